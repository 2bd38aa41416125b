// plugin/graph_view: the plugin graph as a picture (Graphviz dot) or text —
// what `ctrd plugins graph` prints for a config without starting anything:
// every plugin by layer (the API front ends, the services, the base plugins
// under them), its requirement edges, and what will not come up and why
// (disabled, a missing requirement, a cycle).
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "errdefs/errdefs.h"
#include "plugin/plugin.h"

namespace ctrd::plugin {

enum class GraphFormat { kText, kDot };

errdefs::StatusOr<GraphFormat> parse_graph_format(const std::string& name);

// Writes the graph of `registry`, in init order, with the plugins for which
// `disabled` is true shown as disabled.
void write_graph(const Registry& registry, const std::function<bool(const Registration&)>& disabled,
                 GraphFormat format, std::ostream& out);

}  // namespace ctrd::plugin
