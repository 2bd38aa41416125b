// cmd/ctrd/builtins: the plugins compiled into ctrd, registered explicitly in
// one place (no reliance on static-initializer order).
#pragma once

#include "config/config.h"
#include "errdefs/errdefs.h"
#include "plugin/plugin.h"

namespace ctrd::cmd {

void register_builtins(plugin::Registry& registry);

// The plugins the loaded config brings (`[proxy_plugins]`), registered after
// the built-ins and before the server orders them.
errdefs::Status register_config_plugins(plugin::Registry& registry, const config::ServerConfig& config);

}  // namespace ctrd::cmd
