#include "lmdb/lmdb.h"

#include <utility>

namespace ctrd::lmdb {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

MDB_val as_val(std::string_view s) {
  // LMDB never writes through mv_data for keys and values we pass in.
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view as_view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

}  // namespace

Status status_from_mdb(int rc, std::string_view context) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string message = std::string(context) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      return errdefs::NotFound(std::move(message));
    case MDB_KEYEXIST:
      return errdefs::AlreadyExists(std::move(message));
    case MDB_MAP_FULL:
      return errdefs::ResourceExhausted(message + " (the metadata map size is too small for this database)");
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
      return errdefs::ResourceExhausted(std::move(message));
    case MDB_BAD_VALSIZE:
      return errdefs::InvalidArgument(std::move(message));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return errdefs::DataLoss(std::move(message));
    default:
      if (rc > 0) return errdefs::FromErrno(rc, context);
      return errdefs::Internal(std::move(message));
  }
}

// --- Env ---

Env::Env(MDB_env* env) : env_(env), max_key_size_(static_cast<size_t>(mdb_env_get_maxkeysize(env))) {}

Env::~Env() { mdb_env_close(env_); }

StatusOr<std::unique_ptr<Env>> Env::open(const std::string& dir, const EnvOptions& options) {
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != MDB_SUCCESS) return status_from_mdb(rc, "create lmdb environment");
  std::unique_ptr<Env> env(new Env(raw));
  if (int rc = mdb_env_set_mapsize(raw, options.map_size); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "set lmdb map size");
  }
  if (int rc = mdb_env_set_maxreaders(raw, options.max_readers); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "set lmdb max readers");
  }
  if (int rc = mdb_env_set_maxdbs(raw, options.max_tables); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "set lmdb max tables");
  }
  // MDB_NOTLS: a read transaction may begin on one gRPC thread and end on
  // another, and a thread may hold several; reader slots then belong to the
  // transaction instead of the thread.
  if (int rc = mdb_env_open(raw, dir.c_str(), MDB_NOTLS, 0600); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "open lmdb environment in " + dir);
  }
  // Reader slots left behind by a process that died are reclaimed here rather
  // than pinning old pages forever.
  int dead = 0;
  if (int rc = mdb_reader_check(raw, &dead); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "check lmdb readers in " + dir);
  }
  env->max_key_size_ = static_cast<size_t>(mdb_env_get_maxkeysize(raw));
  return env;
}

// --- Txn ---

StatusOr<Txn> Txn::begin_read(const Env& env) {
  MDB_txn* txn = nullptr;
  if (int rc = mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &txn); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "begin metadata read transaction");
  }
  return Txn(txn, env.max_key_size());
}

StatusOr<Txn> Txn::begin_write(const Env& env) {
  MDB_txn* txn = nullptr;
  if (int rc = mdb_txn_begin(env.get(), nullptr, 0, &txn); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "begin metadata write transaction");
  }
  return Txn(txn, env.max_key_size());
}

Txn::Txn(Txn&& other) noexcept
    : txn_(std::exchange(other.txn_, nullptr)), max_key_size_(other.max_key_size_) {}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = std::exchange(other.txn_, nullptr);
    max_key_size_ = other.max_key_size_;
  }
  return *this;
}

Txn::~Txn() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

Status Txn::commit() {
  if (txn_ == nullptr) return errdefs::Internal("commit of a finished metadata transaction");
  // mdb_txn_commit frees the transaction whether or not it succeeds.
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
  return status_from_mdb(rc, "commit metadata transaction");
}

Status Txn::check_key(std::string_view key) const {
  if (key.empty()) return errdefs::InvalidArgument("metadata key must not be empty");
  if (key.size() > max_key_size_) {
    return errdefs::InvalidArgument("metadata key of " + std::to_string(key.size()) + " bytes exceeds the " +
                                    std::to_string(max_key_size_) + "-byte limit");
  }
  return Status::Ok();
}

StatusOr<std::optional<std::string_view>> Txn::get(MDB_dbi table, std::string_view key) const {
  // A key LMDB could never have stored is simply absent.
  if (key.empty() || key.size() > max_key_size_) return std::optional<std::string_view>();
  MDB_val k = as_val(key);
  MDB_val v{};
  int rc = mdb_get(txn_, table, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != MDB_SUCCESS) return status_from_mdb(rc, "read metadata");
  return std::optional<std::string_view>(as_view(v));
}

Status Txn::put(MDB_dbi table, std::string_view key, std::string_view value) {
  CTRD_RETURN_IF_ERROR(check_key(key));
  MDB_val k = as_val(key);
  MDB_val v = as_val(value);
  return status_from_mdb(mdb_put(txn_, table, &k, &v, 0), "write metadata");
}

StatusOr<bool> Txn::put_new(MDB_dbi table, std::string_view key, std::string_view value) {
  CTRD_RETURN_IF_ERROR(check_key(key));
  MDB_val k = as_val(key);
  MDB_val v = as_val(value);
  int rc = mdb_put(txn_, table, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  if (rc != MDB_SUCCESS) return status_from_mdb(rc, "write metadata");
  return true;
}

StatusOr<bool> Txn::erase(MDB_dbi table, std::string_view key) {
  if (key.empty() || key.size() > max_key_size_) return false;
  MDB_val k = as_val(key);
  int rc = mdb_del(txn_, table, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != MDB_SUCCESS) return status_from_mdb(rc, "delete metadata");
  return true;
}

Status Txn::scan_prefix(MDB_dbi table, std::string_view prefix, const Visitor& visit) const {
  CTRD_ASSIGN_OR_RETURN(Cursor cursor, Cursor::open(*this, table));
  CTRD_ASSIGN_OR_RETURN(bool more, prefix.empty() ? cursor.next() : cursor.seek(prefix));
  while (more && cursor.key().starts_with(prefix)) {
    CTRD_RETURN_IF_ERROR(visit(cursor.key(), cursor.value()));
    CTRD_ASSIGN_OR_RETURN(more, cursor.next());
  }
  return Status::Ok();
}

StatusOr<bool> Txn::has_prefix(MDB_dbi table, std::string_view prefix) const {
  CTRD_ASSIGN_OR_RETURN(Cursor cursor, Cursor::open(*this, table));
  CTRD_ASSIGN_OR_RETURN(bool found, prefix.empty() ? cursor.next() : cursor.seek(prefix));
  return found && cursor.key().starts_with(prefix);
}

StatusOr<size_t> Txn::erase_prefix(MDB_dbi table, std::string_view prefix) {
  // Keys are collected first: deleting under a live cursor relies on subtle
  // cursor repositioning rules that are easy to get wrong.
  std::vector<std::string> keys;
  CTRD_RETURN_IF_ERROR(scan_prefix(table, prefix, [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return Status::Ok();
  }));
  for (const auto& key : keys) {
    CTRD_RETURN_IF_ERROR(remove(table, key));
  }
  return keys.size();
}

// --- Cursor ---

StatusOr<Cursor> Cursor::open(const Txn& txn, MDB_dbi table) {
  MDB_cursor* cursor = nullptr;
  if (int rc = mdb_cursor_open(txn.get(), table, &cursor); rc != MDB_SUCCESS) {
    return status_from_mdb(rc, "open metadata cursor");
  }
  return Cursor(cursor);
}

Cursor::Cursor(Cursor&& other) noexcept
    : cursor_(std::exchange(other.cursor_, nullptr)), key_(other.key_), value_(other.value_) {}

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

StatusOr<bool> Cursor::move(MDB_cursor_op op) {
  int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
  if (rc == MDB_NOTFOUND) {
    key_ = value_ = MDB_val{};
    return false;
  }
  if (rc != MDB_SUCCESS) return status_from_mdb(rc, "iterate metadata");
  return true;
}

StatusOr<bool> Cursor::seek(std::string_view key) {
  key_ = as_val(key);
  return move(MDB_SET_RANGE);
}

StatusOr<bool> Cursor::next() { return move(MDB_NEXT); }

std::string_view Cursor::key() const { return as_view(key_); }
std::string_view Cursor::value() const { return as_view(value_); }

}  // namespace ctrd::lmdb
