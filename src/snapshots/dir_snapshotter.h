// snapshots/dir_snapshotter: what the native and overlay snapshotters share.
//
// Records live in a Metastore in <root>/metadata; each snapshot owns the
// directory <root>/snapshots/<id>. A new directory is filled under a
// temporary name ("new-…") and renamed to its id inside the record's write
// transaction; a removed one is renamed aside ("rm-…") inside the removal's
// transaction and deleted after the commit. A crash therefore leaves at most
// directories no record names, which cleanup() deletes.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "snapshots/metastore.h"
#include "snapshots/snapshotter.h"

namespace ctrd::snapshots {

class DirSnapshotter : public Snapshotter {
 public:
  ~DirSnapshotter() override;

  errdefs::StatusOr<Info> stat(std::string_view key) final;
  errdefs::StatusOr<Info> update(const Info& info, const std::vector<std::string>& fieldpaths) final;
  errdefs::StatusOr<Usage> usage(std::string_view key) final;
  errdefs::StatusOr<std::vector<mount::Mount>> mounts(std::string_view key) final;
  errdefs::StatusOr<std::vector<mount::Mount>> prepare(std::string_view key, std::string_view parent,
                                                       const Labels& labels) final;
  errdefs::StatusOr<std::vector<mount::Mount>> view(std::string_view key, std::string_view parent,
                                                    const Labels& labels) final;
  errdefs::Status commit(std::string_view name, std::string_view key, const Labels& labels) final;
  errdefs::Status remove(std::string_view key) final;
  errdefs::Status walk(const std::function<errdefs::Status(const Info&)>& fn,
                       const std::vector<std::string>& filters) final;
  errdefs::Status cleanup() final;

  const std::string& root() const { return root_; }
  // <root>/snapshots/<id>
  std::string snapshot_dir(uint64_t id) const;

 protected:
  // Creates <root> and <root>/snapshots and opens the metastore.
  static errdefs::StatusOr<std::unique_ptr<Metastore>> open_root(const std::string& root);
  DirSnapshotter(std::string root, std::unique_ptr<Metastore> metastore);

  // Fills `dir` (new, empty) for a snapshot of `kind` on `parent_ids`
  // (nearest first) before its record exists.
  virtual errdefs::Status populate(const std::string& dir, Kind kind,
                                   const std::vector<uint64_t>& parent_ids) = 0;
  virtual std::vector<mount::Mount> mounts_for(const Snapshot& snapshot) const = 0;
  // The directory whose contents are this snapshot's own layer.
  virtual std::string layer_dir(uint64_t id) const = 0;
  // Labels added to a new snapshot's record, e.g. naming its directory.
  virtual void add_labels(const Snapshot& /*snapshot*/, Labels& /*labels*/) const {}

 private:
  errdefs::StatusOr<std::vector<mount::Mount>> create(Kind kind, std::string_view key,
                                                      std::string_view parent, const Labels& labels);

  std::string root_;
  std::unique_ptr<Metastore> metastore_;
  // Held shared by calls that create or move directories, exclusively by
  // cleanup(), so it never mistakes an in-flight "new-…" directory for debris.
  std::shared_mutex dirs_mutex_;
};

}  // namespace ctrd::snapshots
