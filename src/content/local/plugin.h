// content/local/plugin.h: io.containerd.content.v1.content — the local blob
// store under the plugin's root, as a plugin.
#pragma once

#include "plugin/plugin.h"

namespace ctrd::content::local {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::content::local
