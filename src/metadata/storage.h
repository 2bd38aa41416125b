// storage: the state every metadata view shares — the LMDB environment, its
// tables, the shared blob store — and the key scheme. Internal to src/metadata;
// the layout itself is documented in db.h.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "lmdb/lmdb.h"
#include "metadata/records.h"
#include "snapshots/snapshotter.h"

namespace ctrd::metadata {

// Handles of the named LMDB databases ("tables"), valid for the environment's life.
struct Tables {
  MDB_dbi meta = 0;
  MDB_dbi namespaces = 0;
  MDB_dbi blobs = 0;
  MDB_dbi ingests = 0;
  MDB_dbi leases = 0;
  MDB_dbi lease_resources = 0;
  MDB_dbi images = 0;
  MDB_dbi containers = 0;
  MDB_dbi snapshots = 0;
  MDB_dbi snapshot_children = 0;
};

namespace keys {

// Separates the parts of a composite key. Namespaces are identifiers and lease
// ids and resource types are checked to be free of it, so a namespace's (or a
// lease's) rows form one contiguous, unambiguous key range.
inline constexpr char kSeparator = '\0';

// Limits that keep every composite key under LMDB's 511-byte key size.
inline constexpr size_t kMaxLeaseIdLength = 128;
inline constexpr size_t kMaxResourceTypeLength = 64;
inline constexpr size_t kMaxRefLength = 240;  // ingest refs, lease resource ids
static_assert(76 + 1 + kMaxLeaseIdLength + 1 + kMaxResourceTypeLength + 1 + kMaxRefLength <= 511);
inline constexpr size_t kMaxImageNameLength = 400;
inline constexpr size_t kMaxSnapshotterNameLength = 64;
// snapshot_children keys hold two snapshot keys.
inline constexpr size_t kMaxSnapshotKeyLength = 180;
static_assert(76 + 1 + kMaxSnapshotterNameLength + 1 + 2 * kMaxSnapshotKeyLength + 1 <= 511);
static_assert(kMaxSnapshotKeyLength <= kMaxRefLength);  // snapshot keys are lease resource ids

inline constexpr std::string_view kSchemaVersion = "schema_version";
inline constexpr std::string_view kIngestSequence = "ingest_sequence";
inline constexpr std::string_view kSnapshotSequence = "snapshot_sequence";

template <typename... Parts>
std::string join(std::string_view first, Parts... rest) {
  std::string key(first);
  ((key.push_back(kSeparator), key.append(std::string_view(rest))), ...);
  return key;
}

// Everything a namespace holds in a per-namespace table.
inline std::string namespace_prefix(std::string_view ns) { return join(ns, ""); }

}  // namespace keys

// Process-wide claim on a database directory: LMDB forbids opening the same
// environment twice in one process (its locks are per process), so a second
// open is refused instead of corrupting lock state.
class DirClaim {
 public:
  static errdefs::StatusOr<DirClaim> acquire(const std::string& canonical_dir);
  DirClaim(DirClaim&& other) noexcept : dir_(std::exchange(other.dir_, std::string())) {}
  DirClaim& operator=(DirClaim&&) = delete;
  DirClaim(const DirClaim&) = delete;
  DirClaim& operator=(const DirClaim&) = delete;
  ~DirClaim();

 private:
  explicit DirClaim(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// A backend snapshotter and the lock that keeps the collector from judging its
// snapshots while a namespace is between creating one in the backend and
// recording it (held shared by changes, exclusively by the collector).
struct SnapshotBackend {
  std::shared_ptr<snapshots::Snapshotter> snapshotter;
  mutable std::shared_mutex lock;
};
using SnapshotBackends = std::map<std::string, std::unique_ptr<SnapshotBackend>, std::less<>>;

class Storage {
 public:
  Storage(DirClaim claim, std::unique_ptr<lmdb::Env> env, Tables tables,
          std::shared_ptr<content::Store> blobs, SnapshotBackends backends, std::string dir);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  const Tables& tables() const { return tables_; }
  content::Store& blobs() const { return *blobs_; }
  const std::string& dir() const { return dir_; }
  const SnapshotBackends& snapshot_backends() const { return backends_; }

  errdefs::StatusOr<lmdb::Txn> read() const { return lmdb::Txn::begin_read(*env_); }
  errdefs::StatusOr<lmdb::Txn> write() const { return lmdb::Txn::begin_write(*env_); }

  // Runs `fn(txn)` in a read transaction.
  template <typename Fn>
  errdefs::Status view(Fn&& fn) const {
    CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, read());
    return std::forward<Fn>(fn)(txn);
  }
  // Runs `fn(txn)` in a write transaction, committed only when it succeeds.
  template <typename Fn>
  errdefs::Status update(Fn&& fn) const {
    CTRD_ASSIGN_OR_RETURN(lmdb::Txn txn, write());
    CTRD_RETURN_IF_ERROR(std::forward<Fn>(fn)(txn));
    return txn.commit();
  }

  // Records `ns` if it does not exist yet: writing anything into a namespace
  // creates it, as containerd's buckets do (so `ctr ns ls` lists it).
  errdefs::Status ensure_namespace(lmdb::Txn& txn, std::string_view ns) const;

  // A fresh, never reused number for backend ingest refs.
  errdefs::StatusOr<uint64_t> next_ingest_sequence(lmdb::Txn& txn) const {
    return next_sequence(txn, keys::kIngestSequence);
  }
  // Likewise for backend snapshot keys.
  errdefs::StatusOr<uint64_t> next_snapshot_sequence(lmdb::Txn& txn) const {
    return next_sequence(txn, keys::kSnapshotSequence);
  }

  // Records resource `type`/`id` under `lease` of `ns` (nothing when `lease`
  // is empty); NotFound when the lease does not exist.
  errdefs::Status hold_in_lease(lmdb::Txn& txn, std::string_view ns, std::string_view lease,
                                std::string_view type, std::string_view id) const;
  errdefs::Status drop_from_lease(lmdb::Txn& txn, std::string_view ns, std::string_view lease,
                                  std::string_view type, std::string_view id) const;

  // Whether any namespace holds `digest` or any ingest shares it: the blob
  // store must then keep it.
  errdefs::StatusOr<bool> blob_in_use(const lmdb::Txn& txn, std::string_view digest) const;

  // Removes `digest` from the blob store when nothing uses it any more (the
  // collector's last step); returns whether it removed it.
  errdefs::StatusOr<bool> release_blob(std::string_view digest) const;

  // Held shared while a change that can make a blob used again (a commit, a
  // shared ingest) is decided and committed; held exclusively by release_blob
  // between its check and the removal, so nothing is removed that a
  // concurrent commit just started to use.
  std::shared_mutex& blob_use_lock() const { return blob_use_lock_; }

  // Tells the mutation callback, if any, about a committed change.
  void notify_mutation(bool deletion) const;
  void set_mutation_callback(std::function<void(bool deletion)> callback) const;

  // Serializes collections.
  std::mutex& gc_lock() const { return gc_lock_; }

 private:
  errdefs::StatusOr<uint64_t> next_sequence(lmdb::Txn& txn, std::string_view key) const;

  DirClaim claim_;  // first: released only after the environment is closed
  std::unique_ptr<lmdb::Env> env_;
  Tables tables_;
  std::shared_ptr<content::Store> blobs_;
  SnapshotBackends backends_;
  std::string dir_;
  mutable std::shared_mutex blob_use_lock_;
  mutable std::mutex callback_lock_;
  mutable std::function<void(bool)> callback_;
  mutable std::mutex gc_lock_;
};

// Checks the namespace a view is bound to, like containerd's NamespaceRequired.
errdefs::Status validate_bound_namespace(std::string_view ns);

}  // namespace ctrd::metadata
