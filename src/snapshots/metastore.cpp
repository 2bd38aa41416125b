#include "snapshots/metastore.h"

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <mutex>
#include <utility>

#include "filters/filters.h"
#include "lmdb/lmdb.h"

namespace ctrd::snapshots {

using errdefs::Status;
using errdefs::StatusOr;

struct Metastore::Tables {
  MDB_dbi meta = 0;
  MDB_dbi snapshots = 0;  // key → Record
  MDB_dbi children = 0;   // parent id ‖ child id → ""
};

namespace {

constexpr std::string_view kSequenceKey = "id_sequence";
constexpr char kRecordVersion = 1;

struct Record {
  uint64_t id = 0;
  Kind kind = Kind::kUnknown;
  std::string parent;
  Clock::time_point created_at;
  Clock::time_point updated_at;
  Labels labels;
};

void put_u64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_bytes(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}
int64_t to_nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_nanos(int64_t n) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(n)));
}

std::string encode_u64(uint64_t v) {
  std::string out;
  put_u64(out, v);
  return out;
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>(in_[i]);
    in_.remove_prefix(8);
    return true;
  }
  bool bytes(std::string* s) {
    uint64_t n = 0;
    if (!u64(&n) || n > in_.size()) return false;
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool byte(char* c) {
    if (in_.empty()) return false;
    *c = in_.front();
    in_.remove_prefix(1);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

std::string encode(const Record& r) {
  std::string out;
  out.push_back(kRecordVersion);
  put_u64(out, r.id);
  out.push_back(static_cast<char>(r.kind));
  put_bytes(out, r.parent);
  put_u64(out, static_cast<uint64_t>(to_nanos(r.created_at)));
  put_u64(out, static_cast<uint64_t>(to_nanos(r.updated_at)));
  put_u64(out, r.labels.size());
  for (const auto& [k, v] : r.labels) {
    put_bytes(out, k);
    put_bytes(out, v);
  }
  return out;
}

Status decode(std::string_view bytes, std::string_view key, Record* r) {
  Reader in(bytes);
  char version = 0;
  char kind = 0;
  uint64_t created = 0;
  uint64_t updated = 0;
  uint64_t count = 0;
  bool ok = in.byte(&version) && version == kRecordVersion && in.u64(&r->id) && in.byte(&kind) &&
            in.bytes(&r->parent) && in.u64(&created) && in.u64(&updated) && in.u64(&count);
  for (uint64_t i = 0; ok && i < count; ++i) {
    std::string k;
    std::string v;
    ok = in.bytes(&k) && in.bytes(&v);
    if (ok) r->labels.emplace(std::move(k), std::move(v));
  }
  if (!ok || !in.done() || kind < static_cast<char>(Kind::kView) ||
      kind > static_cast<char>(Kind::kCommitted)) {
    return errdefs::DataLoss("snapshot record " + std::string(key) + " is corrupt");
  }
  r->kind = static_cast<Kind>(kind);
  r->created_at = from_nanos(static_cast<int64_t>(created));
  r->updated_at = from_nanos(static_cast<int64_t>(updated));
  return Status::Ok();
}

Info to_info(std::string_view key, const Record& r) {
  return Info{.name = std::string(key),
              .parent = r.parent,
              .kind = r.kind,
              .labels = r.labels,
              .created_at = r.created_at,
              .updated_at = r.updated_at};
}

StatusOr<std::optional<Record>> read_record(const lmdb::Txn& txn, MDB_dbi table, std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(auto bytes, txn.get(table, key));
  if (!bytes) return std::optional<Record>();
  Record r;
  CTRD_RETURN_IF_ERROR(decode(*bytes, key, &r));
  return std::optional<Record>(std::move(r));
}

std::string child_key(uint64_t parent_id, uint64_t child_id) {
  return encode_u64(parent_id) + encode_u64(child_id);
}

Status check_key(std::string_view key, std::string_view what) {
  if (key.empty()) return errdefs::InvalidArgument(std::string(what) + " must not be empty");
  return Status::Ok();
}

// LMDB allows one open environment per directory per process.
std::mutex g_claims_mutex;
std::set<std::string>& claims() {
  static std::set<std::string> dirs;
  return dirs;
}

}  // namespace

Metastore::Metastore(std::string dir, std::unique_ptr<lmdb::Env> env, std::unique_ptr<Tables> tables)
    : dir_(std::move(dir)), env_(std::move(env)), tables_(std::move(tables)) {}

Metastore::~Metastore() {
  env_.reset();
  std::lock_guard lock(g_claims_mutex);
  claims().erase(dir_);
}

StatusOr<std::unique_ptr<Metastore>> Metastore::open(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errdefs::FromErrno(errno, "create " + dir);
  std::error_code ec;
  std::string canonical = std::filesystem::canonical(dir, ec).string();
  if (ec) return errdefs::FromErrno(ec.value(), "resolve " + dir);
  {
    std::lock_guard lock(g_claims_mutex);
    if (!claims().insert(canonical).second) {
      return errdefs::FailedPrecondition("snapshot metastore " + canonical +
                                         " is already open in this process");
    }
  }
  auto unclaim = [&canonical] {
    std::lock_guard lock(g_claims_mutex);
    claims().erase(canonical);
  };
  auto env = lmdb::Env::open(canonical, {.map_size = size_t{1} << 32, .max_readers = 126, .max_tables = 4});
  if (!env.ok()) {
    unclaim();
    return env.status();
  }
  auto tables = std::make_unique<Tables>();
  Status s = [&]() -> Status {
    CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_write(**env));
    for (auto [name, dbi] : {std::pair{"meta", &tables->meta}, std::pair{"snapshots", &tables->snapshots},
                             std::pair{"children", &tables->children}}) {
      if (int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi); rc != MDB_SUCCESS) {
        return lmdb::status_from_mdb(rc, std::string("open table ") + name);
      }
    }
    return txn.commit();
  }();
  if (!s.ok()) {
    env->reset();
    unclaim();
    return s;
  }
  return std::unique_ptr<Metastore>(new Metastore(canonical, std::move(*env), std::move(tables)));
}

namespace {

// The chain of parent ids above a snapshot whose parent key is `parent`.
Status parent_chain(const lmdb::Txn& txn, MDB_dbi table, std::string parent, std::vector<uint64_t>* ids) {
  while (!parent.empty()) {
    CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, table, parent));
    if (!record) return errdefs::NotFound("missing parent " + parent);
    ids->push_back(record->id);
    parent = std::move(record->parent);
  }
  return Status::Ok();
}

StatusOr<Snapshot> parent_snapshot(const lmdb::Txn& txn, MDB_dbi table, std::string_view parent) {
  CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, table, parent));
  if (!record) return errdefs::NotFound("parent snapshot " + std::string(parent) + " does not exist");
  if (record->kind != Kind::kCommitted) {
    return errdefs::InvalidArgument("parent " + std::string(parent) + " is not a committed snapshot");
  }
  Snapshot snap{.id = record->id, .kind = record->kind, .parent_ids = {}};
  CTRD_RETURN_IF_ERROR(parent_chain(txn, table, record->parent, &snap.parent_ids));
  return snap;
}

}  // namespace

StatusOr<Snapshot> Metastore::create(Kind kind, std::string_view key, std::string_view parent,
                                     const Labels& labels, const CreateHook& before_commit) {
  if (kind != Kind::kActive && kind != Kind::kView) {
    return errdefs::InvalidArgument("snapshot kind " + std::string(kind_name(kind)) +
                                    " invalid; only Active or View snapshots can be created");
  }
  CTRD_RETURN_IF_ERROR(check_key(key, "snapshot key"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_write(*env_));
  Snapshot snap{.id = 0, .kind = kind, .parent_ids = {}};
  if (!parent.empty()) {
    CTRD_ASSIGN_OR_RETURN(Snapshot p, parent_snapshot(txn, tables_->snapshots, parent));
    snap.parent_ids.push_back(p.id);
    snap.parent_ids.insert(snap.parent_ids.end(), p.parent_ids.begin(), p.parent_ids.end());
  }
  CTRD_ASSIGN_OR_RETURN(auto existing, txn.get(tables_->snapshots, key));
  if (existing) return errdefs::AlreadyExists("snapshot " + std::string(key) + " already exists");

  uint64_t sequence = 0;
  CTRD_ASSIGN_OR_RETURN(auto seq_bytes, txn.get(tables_->meta, kSequenceKey));
  if (seq_bytes && !Reader(*seq_bytes).u64(&sequence))
    return errdefs::DataLoss("snapshot id sequence is corrupt");
  snap.id = sequence + 1;
  CTRD_RETURN_IF_ERROR(txn.put(tables_->meta, kSequenceKey, encode_u64(snap.id)));

  Record record{.id = snap.id,
                .kind = kind,
                .parent = std::string(parent),
                .created_at = Clock::now(),
                .updated_at = {},
                .labels = labels};
  record.updated_at = record.created_at;
  if (!snap.parent_ids.empty()) {
    CTRD_RETURN_IF_ERROR(txn.put(tables_->children, child_key(snap.parent_ids.front(), snap.id), ""));
  }
  if (before_commit) CTRD_RETURN_IF_ERROR(before_commit(snap, record.labels));
  CTRD_RETURN_IF_ERROR(txn.put(tables_->snapshots, key, encode(record)));
  CTRD_RETURN_IF_ERROR(txn.commit());
  return snap;
}

StatusOr<Snapshot> Metastore::get(std::string_view key) const {
  CTRD_RETURN_IF_ERROR(check_key(key, "snapshot key"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_read(*env_));
  CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, tables_->snapshots, key));
  if (!record) return errdefs::NotFound("snapshot " + std::string(key) + " does not exist");
  Snapshot snap{.id = record->id, .kind = record->kind, .parent_ids = {}};
  CTRD_RETURN_IF_ERROR(parent_chain(txn, tables_->snapshots, record->parent, &snap.parent_ids));
  return snap;
}

StatusOr<Snapshot> Metastore::get_parent(std::string_view parent) const {
  CTRD_RETURN_IF_ERROR(check_key(parent, "parent"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_read(*env_));
  return parent_snapshot(txn, tables_->snapshots, parent);
}

StatusOr<Info> Metastore::stat(std::string_view key) const {
  CTRD_RETURN_IF_ERROR(check_key(key, "snapshot key"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_read(*env_));
  CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, tables_->snapshots, key));
  if (!record) return errdefs::NotFound("snapshot " + std::string(key) + " does not exist");
  return to_info(key, *record);
}

StatusOr<Info> Metastore::update(const Info& info, const std::vector<std::string>& fieldpaths) {
  CTRD_RETURN_IF_ERROR(check_key(info.name, "snapshot name"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_write(*env_));
  CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, tables_->snapshots, info.name));
  if (!record) return errdefs::NotFound("snapshot " + info.name + " does not exist");
  if (fieldpaths.empty()) {
    record->labels = info.labels;
  }
  for (const auto& path : fieldpaths) {
    if (path.starts_with("labels.")) {
      std::string key = path.substr(7);
      if (auto it = info.labels.find(key); it != info.labels.end()) {
        record->labels[key] = it->second;
      } else {
        record->labels.erase(key);
      }
    } else if (path == "labels") {
      record->labels = info.labels;
    } else {
      return errdefs::InvalidArgument("cannot update \"" + path + "\" field on snapshot \"" + info.name +
                                      "\"");
    }
  }
  record->updated_at = Clock::now();
  CTRD_RETURN_IF_ERROR(txn.put(tables_->snapshots, info.name, encode(*record)));
  CTRD_RETURN_IF_ERROR(txn.commit());
  return to_info(info.name, *record);
}

StatusOr<Snapshot> Metastore::commit(std::string_view key, std::string_view name, const Labels& labels,
                                     const Hook& before_commit) {
  CTRD_RETURN_IF_ERROR(check_key(key, "snapshot key"));
  CTRD_RETURN_IF_ERROR(check_key(name, "snapshot name"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_write(*env_));
  CTRD_ASSIGN_OR_RETURN(auto existing, txn.get(tables_->snapshots, name));
  if (existing) return errdefs::AlreadyExists("committed snapshot " + std::string(name) + " already exists");
  CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, tables_->snapshots, key));
  if (!record) return errdefs::NotFound("active snapshot " + std::string(key) + " does not exist");
  if (record->kind != Kind::kActive) {
    return errdefs::FailedPrecondition("snapshot " + std::string(key) + " is not active");
  }
  Snapshot snap{.id = record->id, .kind = Kind::kCommitted, .parent_ids = {}};
  CTRD_RETURN_IF_ERROR(parent_chain(txn, tables_->snapshots, record->parent, &snap.parent_ids));
  record->kind = Kind::kCommitted;
  record->created_at = Clock::now();
  record->updated_at = record->created_at;
  record->labels = labels;
  CTRD_RETURN_IF_ERROR(txn.erase(tables_->snapshots, key).status());
  CTRD_RETURN_IF_ERROR(txn.put(tables_->snapshots, name, encode(*record)));
  if (before_commit) CTRD_RETURN_IF_ERROR(before_commit(snap));
  CTRD_RETURN_IF_ERROR(txn.commit());
  return snap;
}

StatusOr<Snapshot> Metastore::remove(std::string_view key, const Hook& before_commit) {
  CTRD_RETURN_IF_ERROR(check_key(key, "snapshot key"));
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_write(*env_));
  CTRD_ASSIGN_OR_RETURN(auto record, read_record(txn, tables_->snapshots, key));
  if (!record) return errdefs::NotFound("snapshot " + std::string(key) + " does not exist");
  CTRD_ASSIGN_OR_RETURN(bool has_children, txn.has_prefix(tables_->children, encode_u64(record->id)));
  if (has_children) {
    return errdefs::FailedPrecondition("cannot remove snapshot " + std::string(key) + " with children");
  }
  Snapshot snap{.id = record->id, .kind = record->kind, .parent_ids = {}};
  CTRD_RETURN_IF_ERROR(parent_chain(txn, tables_->snapshots, record->parent, &snap.parent_ids));
  if (!snap.parent_ids.empty()) {
    CTRD_RETURN_IF_ERROR(txn.erase(tables_->children, child_key(snap.parent_ids.front(), snap.id)).status());
  }
  CTRD_RETURN_IF_ERROR(txn.erase(tables_->snapshots, key).status());
  if (before_commit) CTRD_RETURN_IF_ERROR(before_commit(snap));
  CTRD_RETURN_IF_ERROR(txn.commit());
  return snap;
}

Status Metastore::walk(const std::function<Status(const Info&)>& fn,
                       const std::vector<std::string>& filters) const {
  CTRD_ASSIGN_OR_RETURN(filters::Filter filter, filters::parse_all(filters));
  std::vector<Info> matched;
  {
    CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_read(*env_));
    CTRD_RETURN_IF_ERROR(
        txn.scan_prefix(tables_->snapshots, "", [&](std::string_view key, std::string_view value) {
          Record r;
          CTRD_RETURN_IF_ERROR(decode(value, key, &r));
          Info info = to_info(key, r);
          if (filter.match(filter_fields(info))) matched.push_back(std::move(info));
          return Status::Ok();
        }));
  }
  for (const auto& info : matched) CTRD_RETURN_IF_ERROR(fn(info));
  return Status::Ok();
}

StatusOr<std::set<uint64_t>> Metastore::ids() const {
  std::set<uint64_t> ids;
  CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_read(*env_));
  CTRD_RETURN_IF_ERROR(
      txn.scan_prefix(tables_->snapshots, "", [&](std::string_view key, std::string_view value) {
        Record r;
        CTRD_RETURN_IF_ERROR(decode(value, key, &r));
        ids.insert(r.id);
        return Status::Ok();
      }));
  return ids;
}

}  // namespace ctrd::snapshots
