#include "cri/cni_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "log/log.h"

namespace ctrd::cri {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_whole(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A file's configuration as a list, or why it is not one.
errdefs::StatusOr<NetworkConfig> parse_network_config(const fs::path& path) {
  json doc = json::parse(read_whole(path), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return errdefs::InvalidArgument("not a JSON object");
  if (!doc.contains("name") || !doc["name"].is_string() || doc["name"].get<std::string>().empty())
    return errdefs::InvalidArgument("no network name");
  if (path.extension() == ".conflist") {
    if (!doc.contains("plugins") || !doc["plugins"].is_array() || doc["plugins"].empty())
      return errdefs::InvalidArgument("a configuration list without plugins");
  } else {
    if (!doc.contains("type") || !doc["type"].is_string()) return errdefs::InvalidArgument("no plugin type");
    json list{{"name", doc["name"]}, {"plugins", json::array({doc})}};
    if (doc.contains("cniVersion")) list["cniVersion"] = doc["cniVersion"];
    doc = std::move(list);
  }
  return NetworkConfig{.file = path.string(), .name = doc["name"].get<std::string>(), .conflist = doc.dump()};
}

// ---- the template subset ----

using Value = std::variant<std::string, std::vector<std::string>, int64_t>;

bool truthy(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return !s->empty();
  if (const auto* l = std::get_if<std::vector<std::string>>(&v)) return !l->empty();
  return std::get<int64_t>(v) != 0;
}

struct Node {
  enum class Kind { kText, kPrint, kRange, kIf } kind = Kind::kText;
  std::string text;  // kText; the expression for kPrint, kRange and kIf
  std::string index_var, value_var;
  std::vector<std::unique_ptr<Node>> body, else_body;
};

class Template {
 public:
  explicit Template(const CniTemplateData& data) : data_(data) {}

  errdefs::StatusOr<std::string> render(const std::string& text) {
    CTRD_RETURN_IF_ERROR(tokenize(text));
    size_t pos = 0;
    std::vector<std::unique_ptr<Node>> root;
    std::string stop;
    CTRD_RETURN_IF_ERROR(parse(pos, root, &stop));
    if (!stop.empty()) return errdefs::InvalidArgument("cni template: unexpected {{" + stop + "}}");
    std::string out;
    Scope scope{.dot = Value(std::string())};
    CTRD_RETURN_IF_ERROR(execute(root, scope, out));
    return out;
  }

 private:
  struct Token {
    bool action = false;
    std::string text;
  };
  struct Scope {
    Value dot;
    std::map<std::string, Value> vars;
  };

  errdefs::Status tokenize(const std::string& text) {
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t open = text.find("{{", pos);
      if (open == std::string::npos) {
        tokens_.push_back({false, text.substr(pos)});
        break;
      }
      std::string literal = text.substr(pos, open - pos);
      const size_t close = text.find("}}", open + 2);
      if (close == std::string::npos) return errdefs::InvalidArgument("cni template: unclosed {{");
      std::string action = text.substr(open + 2, close - open - 2);
      pos = close + 2;
      // "{{- " and " -}}" trim the white space beside them.
      if (action.starts_with("- ")) {
        action.erase(0, 2);
        literal.erase(literal.find_last_not_of(" \t\r\n") + 1);
      }
      if (action.ends_with(" -")) {
        action.erase(action.size() - 2);
        while (pos < text.size() && std::string_view(" \t\r\n").find(text[pos]) != std::string_view::npos)
          ++pos;
      }
      tokens_.push_back({false, std::move(literal)});
      const size_t first = action.find_first_not_of(" \t\r\n");
      const size_t last = action.find_last_not_of(" \t\r\n");
      tokens_.push_back({true, first == std::string::npos ? "" : action.substr(first, last - first + 1)});
    }
    return errdefs::Status::Ok();
  }

  // Parses until {{end}} or {{else}} (named in *stop) or the end.
  errdefs::Status parse(size_t& pos, std::vector<std::unique_ptr<Node>>& out, std::string* stop) {
    while (pos < tokens_.size()) {
      const Token& t = tokens_[pos++];
      auto node = std::make_unique<Node>();
      if (!t.action) {
        node->text = t.text;
        out.push_back(std::move(node));
        continue;
      }
      if (t.text == "end" || t.text == "else") {
        *stop = t.text;
        return errdefs::Status::Ok();
      }
      if (t.text.starts_with("range ") || t.text.starts_with("if ")) {
        const bool is_range = t.text.starts_with("range ");
        node->kind = is_range ? Node::Kind::kRange : Node::Kind::kIf;
        std::string expr = t.text.substr(is_range ? 6 : 3);
        if (const size_t assign = expr.find(":="); is_range && assign != std::string::npos) {
          std::string vars = expr.substr(0, assign);
          expr = expr.substr(assign + 2);
          vars.erase(std::remove(vars.begin(), vars.end(), ' '), vars.end());
          if (const size_t comma = vars.find(','); comma != std::string::npos) {
            node->index_var = vars.substr(0, comma);
            node->value_var = vars.substr(comma + 1);
          } else {
            node->value_var = vars;
          }
        }
        expr.erase(0, expr.find_first_not_of(' '));
        expr.erase(expr.find_last_not_of(' ') + 1);
        node->text = expr;
        std::string inner_stop;
        CTRD_RETURN_IF_ERROR(parse(pos, node->body, &inner_stop));
        if (inner_stop == "else") {
          CTRD_RETURN_IF_ERROR(parse(pos, node->else_body, &inner_stop));
        }
        if (inner_stop != "end")
          return errdefs::InvalidArgument("cni template: {{" + t.text + "}} has no {{end}}");
        out.push_back(std::move(node));
        continue;
      }
      node->kind = Node::Kind::kPrint;
      node->text = t.text;
      out.push_back(std::move(node));
    }
    return errdefs::Status::Ok();
  }

  errdefs::StatusOr<Value> evaluate(const std::string& expr, const Scope& scope) const {
    if (expr == ".") return scope.dot;
    if (expr == ".PodCIDR")
      return Value(data_.pod_cidr_ranges.empty() ? std::string() : data_.pod_cidr_ranges.front());
    if (expr == ".PodCIDRRanges") return Value(data_.pod_cidr_ranges);
    if (expr == ".Routes") return Value(data_.routes);
    if (expr.starts_with("$")) {
      if (auto it = scope.vars.find(expr); it != scope.vars.end()) return it->second;
    }
    return errdefs::InvalidArgument("cni template: cannot evaluate " + expr);
  }

  errdefs::Status execute(const std::vector<std::unique_ptr<Node>>& nodes, const Scope& scope,
                          std::string& out) {
    for (const auto& node : nodes) {
      switch (node->kind) {
        case Node::Kind::kText:
          out += node->text;
          break;
        case Node::Kind::kPrint: {
          CTRD_ASSIGN_OR_RETURN(Value v, evaluate(node->text, scope));
          if (const auto* s = std::get_if<std::string>(&v)) {
            out += *s;
          } else if (const auto* i = std::get_if<int64_t>(&v)) {
            out += std::to_string(*i);
          } else {
            return errdefs::InvalidArgument("cni template: " + node->text + " is a list; use range");
          }
          break;
        }
        case Node::Kind::kIf: {
          CTRD_ASSIGN_OR_RETURN(Value v, evaluate(node->text, scope));
          CTRD_RETURN_IF_ERROR(execute(truthy(v) ? node->body : node->else_body, scope, out));
          break;
        }
        case Node::Kind::kRange: {
          CTRD_ASSIGN_OR_RETURN(Value v, evaluate(node->text, scope));
          const auto* list = std::get_if<std::vector<std::string>>(&v);
          if (list == nullptr)
            return errdefs::InvalidArgument("cni template: cannot range over " + node->text);
          if (list->empty()) {
            CTRD_RETURN_IF_ERROR(execute(node->else_body, scope, out));
            break;
          }
          for (size_t i = 0; i < list->size(); ++i) {
            Scope inner = scope;
            inner.dot = (*list)[i];
            if (!node->index_var.empty()) inner.vars[node->index_var] = static_cast<int64_t>(i);
            if (!node->value_var.empty()) inner.vars[node->value_var] = (*list)[i];
            CTRD_RETURN_IF_ERROR(execute(node->body, inner, out));
          }
          break;
        }
      }
    }
    return errdefs::Status::Ok();
  }

  const CniTemplateData& data_;
  std::vector<Token> tokens_;
};

}  // namespace

errdefs::StatusOr<std::vector<NetworkConfig>> load_network_configs(const std::string& conf_dir,
                                                                   int max_conf_num) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(conf_dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if ((ext == ".conf" || ext == ".conflist" || ext == ".json") && entry.is_regular_file(ec))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<NetworkConfig> out;
  for (const auto& file : files) {
    if (max_conf_num > 0 && out.size() >= static_cast<size_t>(max_conf_num)) break;
    auto config = parse_network_config(file);
    if (!config.ok()) {
      log::warn("skipping CNI config", {{"file", file.string()}, {"error", config.status().message()}});
      continue;
    }
    out.push_back(std::move(config).value());
  }
  if (out.empty())
    return errdefs::FailedPrecondition("cni plugin not initialized: no network config found in " + conf_dir);
  return out;
}

CniTemplateData template_data_for(const std::vector<std::string>& pod_cidrs) {
  CniTemplateData data{.pod_cidr_ranges = pod_cidrs, .routes = {}};
  bool v4 = false, v6 = false;
  for (const auto& cidr : pod_cidrs) (cidr.find(':') == std::string::npos ? v4 : v6) = true;
  if (v4) data.routes.emplace_back("0.0.0.0/0");
  if (v6) data.routes.emplace_back("::/0");
  return data;
}

errdefs::StatusOr<std::string> render_cni_template(const std::string& text, const CniTemplateData& data) {
  return Template(data).render(text);
}

}  // namespace ctrd::cri
