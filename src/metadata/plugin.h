// metadata/plugin.h: io.containerd.metadata.v1.lmdb — the metadata store as a
// plugin. It requires the content store and is ordered after any snapshotter
// (none is required: with none registered it still comes up).
#pragma once

#include "plugin/plugin.h"

namespace ctrd::metadata {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::metadata
