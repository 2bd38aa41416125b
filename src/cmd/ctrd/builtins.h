// cmd/ctrd/builtins: the plugins compiled into ctrd, registered explicitly in
// one place (no reliance on static-initializer order).
#pragma once

#include "plugin/plugin.h"

namespace ctrd::cmd {

void register_builtins(plugin::Registry& registry);

}  // namespace ctrd::cmd
