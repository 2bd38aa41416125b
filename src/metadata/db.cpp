#include "metadata/db.h"

#include <filesystem>
#include <system_error>

#include "metadata/content_store.h"
#include "metadata/lmdb.h"
#include "metadata/records.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

// Room for the tables planned in db.h and a few more.
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
                                       const Options& options) {
  if (dir.empty()) return errdefs::InvalidArgument("metadata directory must not be empty");
  if (!blobs) return errdefs::InvalidArgument("metadata store needs a content store for its blobs");

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return errdefs::FromErrno(ec.value(), "create metadata directory " + dir);
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
    // Table handles opened in a write transaction become usable by every
    // later transaction only once it commits.
    CTRD_RETURN_IF_ERROR(txn.commit());
  }
  auto storage = std::make_shared<Storage>(std::move(claim), std::move(env), tables, std::move(blobs), dir);
  return std::shared_ptr<DB>(new DB(std::move(storage)));
}

DB::~DB() = default;

Namespaces DB::namespaces() const { return Namespaces(storage_); }

Leases DB::leases(std::string ns) const { return Leases(storage_, std::move(ns)); }

std::shared_ptr<content::Store> DB::content_store(std::string ns, std::string lease) const {
  return std::make_shared<ContentStore>(storage_, std::move(ns), std::move(lease));
}

const std::string& DB::dir() const { return storage_->dir(); }

}  // namespace ctrd::metadata
