#include "plugin/plugin.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace ctrd::plugin {

using errdefs::Status;

std::string Instance::demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

const std::shared_ptr<void>* Instance::find(std::type_index t) const {
  for (const auto& [type, ptr] : views_) {
    if (type == t) return &ptr;
  }
  return nullptr;
}

Status Registry::add(Registration r) {
  const std::string name = "plugin \"" + r.uri() + "\"";
  if (r.type.empty()) return errdefs::InvalidArgument(name + ": no type");
  if (r.id.empty()) return errdefs::InvalidArgument(name + ": no id");
  if (!r.init) return errdefs::InvalidArgument(name + ": no init function");
  const bool has_star =
      std::find(r.requirements.begin(), r.requirements.end(), kAllPlugins) != r.requirements.end();
  if (has_star && r.requirements.size() != 1) {
    return errdefs::InvalidArgument(name + ": requirement \"*\" must be the only one");
  }
  for (const auto& existing : registrations_) {
    if (existing->type == r.type && existing->id == r.id) {
      return errdefs::AlreadyExists(name + ": registered twice");
    }
  }
  registrations_.push_back(std::make_unique<Registration>(std::move(r)));
  return Status::Ok();
}

void Registry::register_plugin(Registration r) {
  if (auto s = add(std::move(r)); !s.ok()) rejected_.push_back(std::move(s));
}

namespace {

bool requires_all(const Registration& r) {
  return r.requirements.size() == 1 && r.requirements.front() == kAllPlugins;
}

// Depth-first ordering over registrations, in registration order.
class GraphBuilder {
 public:
  explicit GraphBuilder(std::vector<const Registration*> regs) : regs_(std::move(regs)) {
    for (const auto* r : regs_) by_type_[r->type].push_back(r);
  }

  std::vector<GraphNode> build() {
    for (const auto* r : regs_) {
      if (!requires_all(*r)) visit(r);
    }
    for (const auto* r : regs_) {
      if (requires_all(*r)) visit(r);
    }
    std::vector<GraphNode> out;
    out.reserve(order_.size());
    for (const auto* r : order_) {
      auto it = unsatisfied_.find(r);
      out.push_back({r, it == unsatisfied_.end() ? Status::Ok() : it->second});
    }
    return out;
  }

 private:
  void visit(const Registration* r) {
    if (placed_.contains(r)) return;
    auto on_stack = std::find(stack_.begin(), stack_.end(), r);
    if (on_stack != stack_.end()) {
      std::string cycle;
      for (auto it = on_stack; it != stack_.end(); ++it) cycle += (*it)->uri() + " -> ";
      cycle += r->uri();
      for (auto it = on_stack; it != stack_.end(); ++it) mark(*it, "dependency cycle: " + cycle);
      return;
    }
    stack_.push_back(r);
    if (!requires_all(*r)) {
      for (const auto& t : r->requirements) visit_type(r, t, /*optional=*/false);
      for (const auto& t : r->optional_requirements) visit_type(r, t, /*optional=*/true);
    }
    stack_.pop_back();
    placed_.insert(r);
    order_.push_back(r);
  }

  void visit_type(const Registration* r, const std::string& t, bool optional) {
    auto it = by_type_.find(t);
    bool provided = false;
    if (it != by_type_.end()) {
      for (const auto* dep : it->second) {
        if (dep == r) continue;
        provided = true;
        visit(dep);
      }
    }
    if (!provided && !optional) mark(r, "requires " + t + ", which no enabled plugin provides");
  }

  void mark(const Registration* r, std::string why) {
    unsatisfied_.try_emplace(r, errdefs::FailedPrecondition(std::move(why)));
  }

  std::vector<const Registration*> regs_;
  std::map<std::string, std::vector<const Registration*>, std::less<>> by_type_;
  std::vector<const Registration*> stack_;
  std::set<const Registration*> placed_;
  std::vector<const Registration*> order_;
  std::map<const Registration*, Status> unsatisfied_;
};

}  // namespace

std::vector<GraphNode> Registry::graph(const std::function<bool(const Registration&)>& disabled) const {
  std::vector<const Registration*> enabled;
  for (const auto& r : registrations_) {
    if (!disabled || !disabled(*r)) enabled.push_back(r.get());
  }
  return GraphBuilder(std::move(enabled)).build();
}

std::string_view Plugin::status() const {
  if (error_.ok()) return "ok";
  return errdefs::IsSkip(error_) ? "skip" : "error";
}

Status Set::add(std::shared_ptr<Plugin> p) {
  const auto& r = p->registration();
  auto& ids = by_type_[r.type];
  if (ids.contains(r.id)) return errdefs::AlreadyExists("plugin " + r.uri() + " already initialized");
  ids.emplace(r.id, p.get());
  ordered_.push_back(std::move(p));
  return Status::Ok();
}

const Plugin* Set::find(std::string_view type, std::string_view id) const {
  auto t = by_type_.find(type);
  if (t == by_type_.end()) return nullptr;
  auto i = t->second.find(id);
  return i == t->second.end() ? nullptr : i->second;
}

std::vector<const Plugin*> Set::of_type(std::string_view type) const {
  std::vector<const Plugin*> out;
  for (const auto& p : ordered_) {
    if (p->registration().type == type) out.push_back(p.get());
  }
  return out;
}

InitContext::InitContext(const Registration& r, Options options, std::shared_ptr<ConfigHolder> config,
                         std::shared_ptr<const Set> plugins)
    : registration_(&r),
      options_(std::move(options)),
      root_(options_.root + "/" + r.uri()),
      state_(options_.state + "/" + r.uri()),
      config_(std::move(config)),
      plugins_(std::move(plugins)) {}

std::map<std::string, const Plugin*> InitContext::get_by_type(std::string_view type) const {
  std::map<std::string, const Plugin*> out;
  for (const auto* p : plugins_->of_type(type)) out.emplace(p->registration().id, p);
  return out;
}

std::vector<const Plugin*> InitContext::get_all() const {
  std::vector<const Plugin*> out;
  for (const auto& p : plugins_->ordered()) out.push_back(p.get());
  return out;
}

errdefs::StatusOr<const Plugin*> InitContext::first_of(std::string_view type) const {
  auto all = plugins_->of_type(type);
  for (const auto* p : all) {
    if (p->ok()) return p;
  }
  if (!all.empty()) return all.front();  // its get() reports why it failed
  return errdefs::NotFound("no plugins registered for " + std::string(type));
}

Platform host_platform() {
#if defined(__aarch64__)
  return {.os = "linux", .architecture = "arm64", .variant = "v8"};
#else
  return {.os = "linux", .architecture = "amd64", .variant = ""};
#endif
}

}  // namespace ctrd::plugin
