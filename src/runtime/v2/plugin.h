// runtime/v2/plugin: registers io.containerd.runtime.v2.task, the TaskManager.
#pragma once

#include "plugin/plugin.h"

namespace ctrd::runtime::v2 {

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::runtime::v2
