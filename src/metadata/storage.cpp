#include "metadata/storage.h"

#include <mutex>
#include <set>

#include "identifiers/identifiers.h"
#include "log/log.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

std::mutex& open_dirs_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::set<std::string>& open_dirs() {
  static std::set<std::string> dirs;
  return dirs;
}

}  // namespace

StatusOr<DirClaim> DirClaim::acquire(const std::string& canonical_dir) {
  std::lock_guard lock(open_dirs_mutex());
  if (!open_dirs().insert(canonical_dir).second) {
    return errdefs::FailedPrecondition("metadata database " + canonical_dir +
                                       " is already open in this process");
  }
  return DirClaim(canonical_dir);
}

DirClaim::~DirClaim() {
  if (dir_.empty()) return;
  std::lock_guard lock(open_dirs_mutex());
  open_dirs().erase(dir_);
}

Storage::Storage(DirClaim claim, std::unique_ptr<lmdb::Env> env, Tables tables,
                 std::shared_ptr<content::Store> blobs, SnapshotBackends backends, std::string dir)
    : claim_(std::move(claim)),
      env_(std::move(env)),
      tables_(tables),
      blobs_(std::move(blobs)),
      backends_(std::move(backends)),
      dir_(std::move(dir)) {}

Storage::~Storage() = default;

Status Storage::ensure_namespace(lmdb::Txn& txn, std::string_view ns) const {
  CTRD_ASSIGN_OR_RETURN(auto existing, txn.get(tables_.namespaces, ns));
  if (existing) return Status::Ok();
  return txn.put(tables_.namespaces, ns, encode(NamespaceRecord{}));
}

StatusOr<uint64_t> Storage::next_sequence(lmdb::Txn& txn, std::string_view key) const {
  uint64_t sequence = 0;
  CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(tables_.meta, key));
  if (stored && !decode_u64(*stored, &sequence)) {
    return errdefs::DataLoss("corrupt " + std::string(key) + " in metadata database " + dir_);
  }
  ++sequence;
  CTRD_RETURN_IF_ERROR(txn.put(tables_.meta, key, encode_u64(sequence)));
  return sequence;
}

Status Storage::hold_in_lease(lmdb::Txn& txn, std::string_view ns, std::string_view lease,
                              std::string_view type, std::string_view id) const {
  if (lease.empty()) return Status::Ok();
  CTRD_ASSIGN_OR_RETURN(auto record, txn.get(tables_.leases, keys::join(ns, lease)));
  if (!record) return errdefs::NotFound("lease does not exist: " + std::string(lease));
  return txn.put(tables_.lease_resources, keys::join(ns, lease, type, id), "");
}

Status Storage::drop_from_lease(lmdb::Txn& txn, std::string_view ns, std::string_view lease,
                                std::string_view type, std::string_view id) const {
  if (lease.empty()) return Status::Ok();
  CTRD_RETURN_IF_ERROR(txn.remove(tables_.lease_resources, keys::join(ns, lease, type, id)));
  return Status::Ok();
}

void Storage::notify_mutation(bool deletion) const {
  // Called under the lock so that once set_mutation_callback returns, the
  // replaced callback is never running nor called again.
  std::lock_guard lock(callback_lock_);
  if (callback_) callback_(deletion);
}

void Storage::set_mutation_callback(std::function<void(bool deletion)> callback) const {
  std::lock_guard lock(callback_lock_);
  callback_ = std::move(callback);
}

StatusOr<bool> Storage::blob_in_use(const lmdb::Txn& txn, std::string_view digest) const {
  // Namespaces are few; one point lookup each beats keeping a reverse index
  // consistent.
  bool in_use = false;
  CTRD_RETURN_IF_ERROR(txn.scan_prefix(tables_.namespaces, "", [&](std::string_view ns, std::string_view) {
    if (in_use) return Status::Ok();
    CTRD_ASSIGN_OR_RETURN(auto row, txn.get(tables_.blobs, keys::join(ns, digest)));
    in_use = row.has_value();
    return Status::Ok();
  }));
  if (in_use) return true;
  // An ingest sharing the blob will commit it without its bytes.
  CTRD_RETURN_IF_ERROR(
      txn.scan_prefix(tables_.ingests, "", [&](std::string_view key, std::string_view value) {
        if (in_use) return Status::Ok();
        IngestRecord ingest;
        CTRD_RETURN_IF_ERROR(decode(value, key, &ingest));
        in_use = ingest.expected == digest;
        return Status::Ok();
      }));
  return in_use;
}

StatusOr<bool> Storage::release_blob(std::string_view digest) const {
  std::unique_lock lock(blob_use_lock_);
  bool in_use = true;
  CTRD_RETURN_IF_ERROR(view([&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(in_use, blob_in_use(txn, digest));
    return Status::Ok();
  }));
  if (in_use) return false;
  Status removed = blobs_->remove(digest);
  if (errdefs::IsNotFound(removed)) return false;
  CTRD_RETURN_IF_ERROR(removed);
  log::debug("removed unreferenced blob", {{"digest", std::string(digest)}});
  return true;
}

Status validate_bound_namespace(std::string_view ns) {
  if (ns.empty()) return errdefs::FailedPrecondition("namespace is required");
  return identifiers::validate(ns).with_context("namespace validation");
}

}  // namespace ctrd::metadata
