// snapshots/metastore: a snapshotter's own records (containerd's
// snapshots/storage), in an LMDB environment under the snapshotter's root.
//
// Each snapshot is stored by key with a numeric id that names its directory
// on disk; the id comes from a sequence and survives Commit, which only
// renames the key. A parent→children index makes "has children" a prefix
// lookup. Every mutating call is one write transaction; a hook given to it
// runs inside that transaction just before the commit, so the snapshotter can
// put its directory in place (or out of the way) atomically with the record.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "snapshots/snapshotter.h"

namespace ctrd::lmdb {
class Env;
}

namespace ctrd::snapshots {

// What a snapshotter needs to lay out and mount a snapshot.
struct Snapshot {
  uint64_t id = 0;
  Kind kind = Kind::kUnknown;
  std::vector<uint64_t> parent_ids;  // nearest parent first
};

class Metastore {
 public:
  // Runs inside the write transaction, after every check passed and before
  // the commit; an error aborts the transaction. `labels` is what will be
  // stored and may still be extended (e.g. with a label naming the id).
  using CreateHook = std::function<errdefs::Status(const Snapshot& snapshot, Labels& labels)>;
  using Hook = std::function<errdefs::Status(const Snapshot& snapshot)>;

  // Opens (creating when missing) the store in `dir`. One Metastore per
  // directory per process.
  static errdefs::StatusOr<std::unique_ptr<Metastore>> open(const std::string& dir);
  ~Metastore();
  Metastore(const Metastore&) = delete;
  Metastore& operator=(const Metastore&) = delete;

  // Creates an active or view snapshot. NotFound when `parent` does not exist,
  // InvalidArgument when it is not committed, AlreadyExists when `key` does.
  errdefs::StatusOr<Snapshot> create(Kind kind, std::string_view key, std::string_view parent,
                                     const Labels& labels, const CreateHook& before_commit = {});
  // The snapshot `key` (any kind) with its parent chain; NotFound when absent.
  errdefs::StatusOr<Snapshot> get(std::string_view key) const;
  // Like get, for a snapshot that may become a parent: NotFound when absent,
  // InvalidArgument when not committed, with create's messages.
  errdefs::StatusOr<Snapshot> get_parent(std::string_view parent) const;
  errdefs::StatusOr<Info> stat(std::string_view key) const;
  // Replaces labels ("labels", "labels.<key>"; all when fieldpaths is empty).
  errdefs::StatusOr<Info> update(const Info& info, const std::vector<std::string>& fieldpaths);
  // Renames active `key` to committed `name`, keeping its id; labels are
  // replaced, not inherited (as containerd does).
  errdefs::StatusOr<Snapshot> commit(std::string_view key, std::string_view name, const Labels& labels,
                                     const Hook& before_commit = {});
  // Removes `key`; FailedPrecondition when it has children. Returns its id and kind.
  errdefs::StatusOr<Snapshot> remove(std::string_view key, const Hook& before_commit = {});
  // Every snapshot matching `filters` (see Snapshotter::walk), in key order.
  // `fn` runs after the read transaction ended, so it may call back in.
  errdefs::Status walk(const std::function<errdefs::Status(const Info&)>& fn,
                       const std::vector<std::string>& filters) const;
  // Every id a record holds, for removing stray directories.
  errdefs::StatusOr<std::set<uint64_t>> ids() const;

 private:
  struct Tables;
  Metastore(std::string dir, std::unique_ptr<lmdb::Env> env, std::unique_ptr<Tables> tables);

  std::string dir_;
  std::unique_ptr<lmdb::Env> env_;
  std::unique_ptr<Tables> tables_;
};

}  // namespace ctrd::snapshots
