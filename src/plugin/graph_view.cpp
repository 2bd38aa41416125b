#include "plugin/graph_view.h"

#include <map>
#include <set>
#include <string_view>
#include <vector>

namespace ctrd::plugin {
namespace {

// The three plugin layers of docs/design.md, top to bottom.
enum class Layer { kApi, kService, kBase };

Layer layer_of(const Registration& r) {
  if (r.type == type::kGRPC || r.type == type::kTTRPC) return Layer::kApi;
  if (r.type == type::kService) return Layer::kService;
  return Layer::kBase;
}

std::string_view layer_name(Layer l) {
  switch (l) {
    case Layer::kApi:
      return "api";
    case Layer::kService:
      return "service";
    case Layer::kBase:
      return "base";
  }
  return "base";
}

struct Node {
  const Registration* registration;
  bool disabled = false;
  std::string problem;  // why it cannot come up; empty when it can
  // Per required type, the plugins of that type in the graph ("*": all).
  struct Requirement {
    std::string type;
    std::vector<std::string> providers;
    bool optional = false;  // used when present (metadata takes every snapshotter)
  };
  std::vector<Requirement> requires_;
  std::vector<std::string> missing;  // required types nothing provides
};

std::vector<Node> build(const Registry& registry,
                        const std::function<bool(const Registration&)>& is_disabled) {
  const auto order = registry.graph(is_disabled);

  std::map<std::string, std::vector<const Registration*>, std::less<>> by_type;
  for (const auto& n : order) by_type[n.registration->type].push_back(n.registration);

  std::vector<Node> nodes;
  for (const auto& n : order) {
    Node node{n.registration, false, n.unsatisfied.ok() ? "" : n.unsatisfied.message(), {}, {}};
    auto add = [&](const std::string& req, bool optional) {
      std::vector<std::string> providers;
      if (req == kAllPlugins) {
        for (const auto& other : order)
          if (other.registration != n.registration) providers.push_back(other.registration->uri());
      } else if (auto it = by_type.find(req); it != by_type.end()) {
        for (const auto* r : it->second)
          if (r != n.registration) providers.push_back(r->uri());
      }
      if (!providers.empty()) {
        node.requires_.push_back({req, std::move(providers), optional});
      } else if (!optional) {
        node.missing.push_back(req);
      }
    };
    for (const auto& req : n.registration->requirements) add(req, false);
    for (const auto& req : n.registration->optional_requirements) add(req, true);
    nodes.push_back(std::move(node));
  }
  // Disabled plugins are not in the init order; they are still shown.
  for (const auto& r : registry.registrations()) {
    if (is_disabled && is_disabled(*r))
      nodes.push_back(Node{r.get(), true, "disabled by the config", {}, {}});
  }
  return nodes;
}

std::string dot_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

void write_text(const std::vector<Node>& nodes, std::ostream& out) {
  for (const auto& n : nodes) {
    const auto& r = *n.registration;
    out << r.uri() << "  [" << layer_name(layer_of(r)) << "]";
    if (!n.requires_.empty()) {
      out << "  requires:";
      const char* sep = " ";
      for (const auto& req : n.requires_) {
        out << sep << (req.optional ? "optionally " : "")
            << (req.providers.size() == 1
                    ? req.providers.front()
                    : req.type + " (" + std::to_string(req.providers.size()) + " plugins)");
        sep = ", ";
      }
    }
    for (const auto& type : n.missing) out << "  MISSING: " << type;
    if (n.disabled) {
      out << "  DISABLED";
    } else if (!n.problem.empty()) {
      out << "  UNSATISFIED: " << n.problem;
    }
    out << "\n";
  }
}

void write_dot(const std::vector<Node>& nodes, std::ostream& out) {
  out << "digraph plugins {\n"
         "  rankdir=TB;\n"
         "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n"
         "  edge [color=\"#777777\"];\n";
  for (Layer layer : {Layer::kApi, Layer::kService, Layer::kBase}) {
    out << "  subgraph cluster_" << layer_name(layer) << " {\n    label=" << dot_quote(layer_name(layer))
        << "; style=dashed; color=\"#bbbbbb\";\n";
    for (const auto& n : nodes) {
      const auto& r = *n.registration;
      if (layer_of(r) != layer) continue;
      std::string label = r.type + "\n" + r.id;
      std::string attrs;
      if (n.disabled) {
        label += "\n(disabled)";
        attrs = ", style=\"rounded,dashed\", color=\"#999999\", fontcolor=\"#999999\"";
      } else if (!n.problem.empty()) {
        label += "\n" + n.problem;
        attrs = ", color=red, fontcolor=red, penwidth=2";
      }
      out << "    " << dot_quote(r.uri()) << " [label=" << dot_quote(label) << attrs << "];\n";
    }
    out << "  }\n";
  }
  // A type several plugins provide is drawn once, as a node its providers
  // hang from, rather than as an edge to each of them from each dependant.
  std::set<std::string> type_nodes;
  for (const auto& n : nodes) {
    for (const auto& req : n.requires_) {
      const std::string style = req.optional ? " [style=dashed]" : "";
      if (req.providers.size() == 1) {
        out << "  " << dot_quote(n.registration->uri()) << " -> " << dot_quote(req.providers.front()) << style
            << ";\n";
        continue;
      }
      const std::string type_node = req.type == kAllPlugins ? "every plugin" : req.type;
      if (type_nodes.insert(type_node).second) {
        out << "  " << dot_quote(type_node) << " [shape=ellipse, style=filled, fillcolor=\"#eeeeee\"];\n";
        for (const auto& p : req.providers)
          out << "  " << dot_quote(type_node) << " -> " << dot_quote(p)
              << " [style=dotted, arrowhead=none];\n";
      }
      out << "  " << dot_quote(n.registration->uri()) << " -> " << dot_quote(type_node) << style << ";\n";
    }
    for (const auto& type : n.missing) {
      const std::string missing = "missing: " + type;
      out << "  " << dot_quote(missing) << " [shape=octagon, color=red, fontcolor=red];\n"
          << "  " << dot_quote(n.registration->uri()) << " -> " << dot_quote(missing) << " [color=red];\n";
    }
  }
  out << "}\n";
}

}  // namespace

errdefs::StatusOr<GraphFormat> parse_graph_format(const std::string& name) {
  if (name.empty() || name == "text") return GraphFormat::kText;
  if (name == "dot") return GraphFormat::kDot;
  return errdefs::InvalidArgument("unknown graph format \"" + name + "\" (want text or dot)");
}

void write_graph(const Registry& registry, const std::function<bool(const Registration&)>& disabled,
                 GraphFormat format, std::ostream& out) {
  const auto nodes = build(registry, disabled);
  if (format == GraphFormat::kDot) {
    write_dot(nodes, out);
  } else {
    write_text(nodes, out);
  }
}

}  // namespace ctrd::plugin
