// snapshots/overlay/plugin.h: io.containerd.snapshotter.v1.overlayfs — the
// overlayfs snapshotter, skipped on hosts whose root filesystem cannot carry
// an overlay upper dir.
#pragma once

#include "plugin/plugin.h"

namespace ctrd::snapshots::overlay {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::snapshots::overlay
