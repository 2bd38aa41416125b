// proxy/plugin: the config's `[proxy_plugins.<name>]` entries as plugins —
// io.containerd.snapshotter.v1.<name>, io.containerd.content.v1.<name> or
// io.containerd.differ.v1.<name> — usable like the built-in ones
// (`ctr --snapshotter <name>`, listed by `ctr plugins ls`). Each exports its
// "address". Init does not connect: a plugin whose server is down comes up,
// and its calls fail with Unavailable until the server is back.
//
// A proxy snapshotter is ordered before the metadata plugin (which takes every
// snapshotter initialized before it). The metadata store takes the first
// content plugin, so a proxy content store replaces the local one only when
// that one is disabled (`disabled_plugins = ["io.containerd.content.v1.content"]`).
#pragma once

#include "config/config.h"
#include "errdefs/errdefs.h"
#include "plugin/plugin.h"

namespace ctrd::proxy {

// Registers one plugin per entry, in name order. An entry with an unknown type
// or no address is InvalidArgument naming it, and nothing is registered; a
// name a built-in plugin of the same type has is AlreadyExists.
errdefs::Status register_proxy_plugins(plugin::Registry& registry, const config::ServerConfig& config);

}  // namespace ctrd::proxy
