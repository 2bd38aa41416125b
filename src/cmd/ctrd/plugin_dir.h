// cmd/ctrd/plugin_dir: loads the plugins built outside ctrd from the config's
// `plugin_dir` (plugin/loader.h), before the plugin graph is built.
#pragma once

#include "config/config.h"
#include "plugin/plugin.h"

namespace ctrd::cmd {

// Registers the plugins of every acceptable `*.so` in `config.plugin_dir`,
// logging one line per file: what it registered, or why it was refused. A
// refused file does not stop the daemon; if it would have provided a required
// plugin, the server's required_plugins check does.
void load_plugin_dir(plugin::Registry& registry, const config::ServerConfig& config);

}  // namespace ctrd::cmd
