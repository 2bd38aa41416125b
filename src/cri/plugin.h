// cri/plugin: io.containerd.grpc.v1.cri — the Kubernetes Container Runtime
// Interface (runtime.v1 RuntimeService and ImageService) on the daemon's gRPC
// socket, as containerd 1.6 serves it, configured under
// [plugins."io.containerd.grpc.v1.cri"] (cri/config.h).
#pragma once

#include "plugin/plugin.h"

namespace ctrd::cri {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::cri
