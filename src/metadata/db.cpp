#include "metadata/db.h"

#include <filesystem>
#include <system_error>

#include "lmdb/lmdb.h"
#include "metadata/collector.h"
#include "metadata/content_store.h"
#include "metadata/records.h"
#include "metadata/snapshotter.h"
#include "metadata/storage.h"
#include "os/dirs.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

// Room for the tables in db.h and a few more.
constexpr unsigned kMaxTables = 32;

StatusOr<MDB_dbi> open_table(const lmdb::Txn& txn, const char* name) {
  MDB_dbi dbi = 0;
  if (int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, &dbi); rc != MDB_SUCCESS) {
    return lmdb::status_from_mdb(rc, std::string("open metadata table ") + name);
  }
  return dbi;
}

// Brings a database at `found` up to kSchemaVersion. Version 1 is the first
// layout, so there is nothing older to migrate yet.
Status migrate(lmdb::Txn& /*txn*/, uint64_t found, const std::string& dir) {
  return errdefs::FailedPrecondition("metadata database " + dir + " has schema version " +
                                     std::to_string(found) + ", and no migration to version " +
                                     std::to_string(kSchemaVersion) + " exists");
}

// Checks (and on a new database records) the schema version before anything
// else is touched, so a newer database is left exactly as it was.
Status check_schema(lmdb::Txn& txn, MDB_dbi meta, const std::string& dir) {
  CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(meta, keys::kSchemaVersion));
  if (!stored) return txn.put(meta, keys::kSchemaVersion, encode_u64(kSchemaVersion));
  uint64_t found = 0;
  if (!decode_u64(*stored, &found)) {
    return errdefs::DataLoss("metadata database " + dir + " has an unreadable schema version");
  }
  if (found > kSchemaVersion) {
    return errdefs::FailedPrecondition("metadata database " + dir + " has schema version " +
                                       std::to_string(found) + ", newer than version " +
                                       std::to_string(kSchemaVersion) +
                                       " which this ctrd supports; refusing to open it");
  }
  if (found < kSchemaVersion) {
    CTRD_RETURN_IF_ERROR(migrate(txn, found, dir));
    return txn.put(meta, keys::kSchemaVersion, encode_u64(kSchemaVersion));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<DB>> DB::open(const std::string& dir, std::shared_ptr<content::Store> blobs,
                                       Snapshotters snapshotters, const Options& options) {
  if (dir.empty()) return errdefs::InvalidArgument("metadata directory must not be empty");
  if (!blobs) return errdefs::InvalidArgument("metadata store needs a content store for its blobs");
  SnapshotBackends backends;
  for (auto& [name, snapshotter] : snapshotters) {
    // Names are parts of row keys and of lease resource types.
    if (name.empty() || name.size() > keys::kMaxSnapshotterNameLength ||
        name.find(keys::kSeparator) != std::string::npos || name.find('/') != std::string::npos) {
      return errdefs::InvalidArgument("invalid snapshotter name \"" + name + "\"");
    }
    if (!snapshotter) return errdefs::InvalidArgument("snapshotter \"" + name + "\" is null");
    auto backend = std::make_unique<SnapshotBackend>();
    backend->snapshotter = std::move(snapshotter);
    backends.emplace(name, std::move(backend));
  }

  CTRD_RETURN_IF_ERROR(os::ensure_dir(dir, 0700));
  std::error_code ec;
  auto canonical = std::filesystem::canonical(dir, ec);
  if (ec) return errdefs::FromErrno(ec.value(), "resolve metadata directory " + dir);
  CTRD_ASSIGN_OR_RETURN(DirClaim claim, DirClaim::acquire(canonical.string()));

  CTRD_ASSIGN_OR_RETURN(auto env, lmdb::Env::open(dir, {.map_size = options.map_size,
                                                        .max_readers = options.max_readers,
                                                        .max_tables = kMaxTables}));
  Tables tables;
  {
    CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::begin_write(*env));
    CTRD_ASSIGN_OR_RETURN(tables.meta, open_table(txn, "meta"));
    CTRD_RETURN_IF_ERROR(check_schema(txn, tables.meta, dir));
    CTRD_ASSIGN_OR_RETURN(tables.namespaces, open_table(txn, "namespaces"));
    CTRD_ASSIGN_OR_RETURN(tables.blobs, open_table(txn, "blobs"));
    CTRD_ASSIGN_OR_RETURN(tables.ingests, open_table(txn, "ingests"));
    CTRD_ASSIGN_OR_RETURN(tables.leases, open_table(txn, "leases"));
    CTRD_ASSIGN_OR_RETURN(tables.lease_resources, open_table(txn, "lease_resources"));
    CTRD_ASSIGN_OR_RETURN(tables.images, open_table(txn, "images"));
    CTRD_ASSIGN_OR_RETURN(tables.containers, open_table(txn, "containers"));
    CTRD_ASSIGN_OR_RETURN(tables.snapshots, open_table(txn, "snapshots"));
    CTRD_ASSIGN_OR_RETURN(tables.snapshot_children, open_table(txn, "snapshot_children"));
    // Table handles opened in a write transaction become usable by every
    // later transaction only once it commits.
    CTRD_RETURN_IF_ERROR(txn.commit());
  }
  auto storage = std::make_shared<Storage>(std::move(claim), std::move(env), tables, std::move(blobs),
                                           std::move(backends), dir);
  return std::shared_ptr<DB>(new DB(std::move(storage)));
}

DB::~DB() = default;

Namespaces DB::namespaces() const { return Namespaces(storage_); }

Leases DB::leases(std::string ns) const { return Leases(storage_, std::move(ns)); }

Images DB::images(std::string ns) const { return Images(storage_, std::move(ns)); }

Containers DB::containers(std::string ns) const { return Containers(storage_, std::move(ns)); }

StatusOr<std::shared_ptr<snapshots::Snapshotter>> DB::snapshotter(std::string ns, std::string_view name,
                                                                  std::string lease) const {
  auto it = storage_->snapshot_backends().find(name);
  if (it == storage_->snapshot_backends().end()) {
    return errdefs::NotFound("snapshotter not loaded: " + std::string(name) + ": not found");
  }
  return std::shared_ptr<snapshots::Snapshotter>(std::make_shared<NamespacedSnapshotter>(
      storage_, std::move(ns), std::string(name), std::move(lease), *it->second));
}

std::vector<std::string> DB::snapshotter_names() const {
  std::vector<std::string> names;
  for (const auto& [name, backend] : storage_->snapshot_backends()) names.push_back(name);
  return names;
}

StatusOr<GcStats> DB::garbage_collect() const { return collect_garbage(*storage_); }

void DB::set_mutation_callback(std::function<void(bool deletion)> callback) const {
  storage_->set_mutation_callback(std::move(callback));
}

std::shared_ptr<content::Store> DB::content_store(std::string ns, std::string lease) const {
  return std::make_shared<ContentStore>(storage_, std::move(ns), std::move(lease));
}

const std::string& DB::dir() const { return storage_->dir(); }

}  // namespace ctrd::metadata
