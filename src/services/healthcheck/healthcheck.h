// services/healthcheck: io.containerd.grpc.v1.healthcheck — grpc.health.v1.Health,
// served by gRPC's own implementation (SERVING while the daemon runs).
#pragma once

#include "plugin/plugin.h"

namespace ctrd::services::healthcheck {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::healthcheck
