// snapshots/native/plugin.h: io.containerd.snapshotter.v1.native — the native
// snapshotter under the plugin's root (or [plugins."…native"] root_path).
#pragma once

#include "plugin/plugin.h"

namespace ctrd::snapshots::native {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::snapshots::native
