// events/plugin.h: io.containerd.event.v1.exchange — the daemon's event
// exchange as a plugin, so introspection lists it and plugins can look it up
// by type like any other (the server creates it and hands it to every
// InitContext).
#pragma once

#include "plugin/plugin.h"

namespace ctrd::events {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::events
