// snapshots/overlay: the overlayfs snapshotter, with containerd's layout —
// <root>/snapshots/<id>/fs is a snapshot's own layer (the upper dir while
// active), <root>/snapshots/<id>/work overlayfs' work dir. Parents are
// stacked as lower dirs, so preparing a snapshot copies nothing.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "snapshots/dir_snapshotter.h"

namespace ctrd::snapshots::overlay {

// containerd's label naming an active snapshot's upper dir.
inline constexpr std::string_view kUpperdirLabel = "containerd.io/snapshot/overlay.upperdir";

struct Options {
  // Adds kUpperdirLabel to every new snapshot.
  bool upperdir_label = false;
};

// Whether overlayfs can be mounted with upper and work dirs on `root`'s
// filesystem, by trying it; Skip with the reason when it cannot. Tearing the
// trial down takes as long as an unmount: with `teardown`, that runs on the
// thread put there (the caller owns and joins it), else before returning.
errdefs::Status check_supported(const std::string& root, std::jthread* teardown = nullptr);

class OverlaySnapshotter final : public DirSnapshotter {
 public:
  // Opens (creating when missing) the snapshotter rooted at `root`.
  static errdefs::StatusOr<std::shared_ptr<OverlaySnapshotter>> open(const std::string& root,
                                                                     Options options = {});

  std::string upper_dir(uint64_t id) const { return snapshot_dir(id) + "/fs"; }
  // Keeps check_supported's teardown thread until the snapshotter goes.
  void adopt(std::jthread teardown) { teardown_ = std::move(teardown); }
  std::string work_dir(uint64_t id) const { return snapshot_dir(id) + "/work"; }

 private:
  OverlaySnapshotter(std::string root, std::unique_ptr<Metastore> metastore, Options options, bool index_off);

  errdefs::Status populate(const std::string& dir, Kind kind,
                           const std::vector<uint64_t>& parent_ids) override;
  std::vector<mount::Mount> mounts_for(const Snapshot& snapshot) const override;
  std::string layer_dir(uint64_t id) const override { return upper_dir(id); }
  void add_labels(const Snapshot& snapshot, Labels& labels) const override;

  Options options_;
  // Kernels with an overlay "index" feature get index=off: with it on, a
  // lower dir shared by several mounts is refused after the first.
  bool index_off_;
  std::jthread teardown_;
};

}  // namespace ctrd::snapshots::overlay
