// services/events: io.containerd.grpc.v1.events — Publish, Forward and Subscribe
// (containerd.services.events.v1.Events) over the daemon's event exchange.
// Subscribe streams are driven by gRPC's callback API: no thread per subscriber.
#pragma once

#include "plugin/plugin.h"

namespace ctrd::services::events {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::events
