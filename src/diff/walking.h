// diff/walking: the walking differ (io.containerd.differ.v1.walking).
//
// Apply reads the layer from the namespace's content store, runs it through
// the configured stream processors its media type calls for
// (diff/stream_processor.h), decompresses it by media type and applies it
// with archive::apply. Mounts it can write to
// without mounting are not mounted: a bind mount is its source directory and
// an overlay mount's upper directory takes the layer directly, with overlay
// whiteouts (containerd does the same for overlay; it spares remounting every
// parent, containerd #2886). Anything else is mounted on a temporary
// directory under the plugin's state and unmounted afterwards.
#pragma once

#include <memory>
#include <string>

#include "diff/diff.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::diff {

class WalkingDiffer final : public Differ {
 public:
  WalkingDiffer(std::shared_ptr<metadata::DB> db, std::string scratch_dir)
      : db_(std::move(db)), scratch_dir_(std::move(scratch_dir)) {}

  errdefs::StatusOr<Descriptor> apply(const ApplyRequest& request) override;
  errdefs::StatusOr<Descriptor> compare(const CompareRequest& request) override;

 private:
  std::shared_ptr<metadata::DB> db_;
  std::string scratch_dir_;  // temporary mount points
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::diff
