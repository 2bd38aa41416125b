// snapshots/native: the portable snapshotter — every snapshot is a plain
// directory, and a new one starts as a full copy of its parent (reflinked
// where the filesystem allows). Mounts are bind mounts of that directory.
#pragma once

#include <memory>
#include <string>

#include "snapshots/dir_snapshotter.h"

namespace ctrd::snapshots::native {

class NativeSnapshotter final : public DirSnapshotter {
 public:
  // Opens (creating when missing) the snapshotter rooted at `root`.
  static errdefs::StatusOr<std::shared_ptr<NativeSnapshotter>> open(const std::string& root);

 private:
  using DirSnapshotter::DirSnapshotter;

  errdefs::Status populate(const std::string& dir, Kind kind,
                           const std::vector<uint64_t>& parent_ids) override;
  std::vector<mount::Mount> mounts_for(const Snapshot& snapshot) const override;
  std::string layer_dir(uint64_t id) const override { return snapshot_dir(id); }
};

}  // namespace ctrd::snapshots::native
