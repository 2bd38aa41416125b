// services/version: io.containerd.grpc.v1.version — the daemon's version and
// revision (containerd.services.version.v1.Version), as `ctr version` shows them.
#pragma once

#include "plugin/plugin.h"

namespace ctrd::services::version {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::version
