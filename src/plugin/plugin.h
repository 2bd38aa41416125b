// plugin: ctrd's plugin framework — registrations, their dependency graph, the
// init context handed to each plugin, and the set of initialized plugins.
//
// Every capability of the daemon (content store, snapshotters, services, ...)
// is a Registration{type, id, requirements, config, init}. The Registry orders
// registrations so each comes after what it requires; the server calls each
// init with an InitContext that can look up the plugins initialized before it.
// Instances are typed: an Instance holds a shared_ptr<T> plus the interfaces it
// exposes, and asking for another interface is an error, not a crash.
//
// This library has no gRPC dependency and does no I/O of its own.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <utility>
#include <vector>

#include "config/binder.h"
#include "errdefs/errdefs.h"

namespace ctrd::events {
class Exchange;
}
namespace ctrd::executor {
class WorkerPool;
}

namespace ctrd::plugin {

// Plugin types, spelled exactly as containerd's so `ctr plugins ls` reads the same.
namespace type {
inline constexpr std::string_view kInternal = "io.containerd.internal.v1";
inline constexpr std::string_view kRuntime = "io.containerd.runtime.v1";
inline constexpr std::string_view kRuntimeV2 = "io.containerd.runtime.v2";
inline constexpr std::string_view kService = "io.containerd.service.v1";
inline constexpr std::string_view kGRPC = "io.containerd.grpc.v1";
inline constexpr std::string_view kTTRPC = "io.containerd.ttrpc.v1";
inline constexpr std::string_view kSnapshot = "io.containerd.snapshotter.v1";
inline constexpr std::string_view kTaskMonitor = "io.containerd.monitor.v1";
inline constexpr std::string_view kDiff = "io.containerd.differ.v1";
inline constexpr std::string_view kMetadata = "io.containerd.metadata.v1";
inline constexpr std::string_view kContent = "io.containerd.content.v1";
inline constexpr std::string_view kGC = "io.containerd.gc.v1";
inline constexpr std::string_view kEvent = "io.containerd.event.v1";
inline constexpr std::string_view kLease = "io.containerd.lease.v1";
inline constexpr std::string_view kStreamProcessor = "io.containerd.stream-processor.v1";
}  // namespace type

// Requirement meaning "after every other plugin"; it must be the only requirement.
inline constexpr std::string_view kAllPlugins = "*";

// A plugin that holds resources implements Closer; the server closes plugins in
// reverse init order at shutdown.
class Closer {
 public:
  virtual ~Closer() = default;
  virtual errdefs::Status close() = 0;
};

// Type-erased, type-checked holder of a plugin's instance.
class Instance {
 public:
  Instance() = default;

  // Holds `object`, reachable as T and as each of Interfaces (bases of T).
  template <typename T, typename... Interfaces>
  static Instance of(std::shared_ptr<T> object) {
    Instance inst;
    inst.type_name_ = demangle(typeid(T).name());
    inst.add_view<T>(object);
    (inst.add_view<Interfaces>(std::static_pointer_cast<Interfaces>(object)), ...);
    if constexpr (std::is_base_of_v<Closer, T>) inst.closer_ = std::static_pointer_cast<Closer>(object);
    return inst;
  }

  bool empty() const { return views_.empty(); }
  const std::string& type_name() const { return type_name_; }

  template <typename T>
  bool is() const {
    return find(typeid(T)) != nullptr;
  }

  template <typename T>
  errdefs::StatusOr<std::shared_ptr<T>> get() const {
    if (const auto* v = find(typeid(T))) return std::static_pointer_cast<T>(*v);
    if (empty()) return errdefs::NotFound("plugin has no instance");
    return errdefs::InvalidArgument("plugin instance is " + type_name_ + ", which does not provide " +
                                    demangle(typeid(T).name()));
  }

  // The instance's Closer, or null.
  const std::shared_ptr<Closer>& closer() const { return closer_; }

  static std::string demangle(const char* name);

 private:
  template <typename T>
  void add_view(std::shared_ptr<T> p) {
    views_.emplace_back(std::type_index(typeid(T)), std::shared_ptr<void>(std::move(p)));
  }
  const std::shared_ptr<void>* find(std::type_index t) const;

  std::vector<std::pair<std::type_index, std::shared_ptr<void>>> views_;
  std::shared_ptr<Closer> closer_;
  std::string type_name_;
};

// A plugin's decoded configuration, type-erased. Plugins declare a typed one
// with `typed_config<T>()`.
class ConfigHolder {
 public:
  virtual ~ConfigHolder() = default;
  virtual void bind(config::Binder& b) = 0;
  virtual std::unique_ptr<ConfigHolder> clone() const = 0;
};

template <typename T>
class TypedConfig final : public ConfigHolder {
 public:
  TypedConfig() = default;
  explicit TypedConfig(T v) : value(std::move(v)) {}
  void bind(config::Binder& b) override { value.bind(b); }
  std::unique_ptr<ConfigHolder> clone() const override { return std::make_unique<TypedConfig<T>>(value); }
  T value;
};

using ConfigFactory = std::function<std::unique_ptr<ConfigHolder>()>;

// Declares a plugin's config type: default-constructed T gives the defaults.
template <typename T>
ConfigFactory typed_config(T defaults = T{}) {
  return [defaults]() -> std::unique_ptr<ConfigHolder> { return std::make_unique<TypedConfig<T>>(defaults); };
}

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  bool operator==(const Platform&) const = default;
};

// The platform this daemon runs (what snapshotters and differs export).
Platform host_platform();

// What a plugin tells the world about itself, filled in during init.
struct Meta {
  std::vector<Platform> platforms;
  std::map<std::string, std::string> exports;
  std::vector<std::string> capabilities;
};

class InitContext;
using InitFn = std::function<errdefs::StatusOr<Instance>(InitContext&)>;

struct Registration {
  std::string type;
  std::string id;
  // Plugin types this one needs, initialized before it; kAllPlugins alone means
  // "after everything else". A type no registered plugin provides is an error.
  std::vector<std::string> requirements;
  // Types initialized before this one when present; absent is fine.
  std::vector<std::string> optional_requirements;
  ConfigFactory config;  // empty: the plugin takes no config
  InitFn init;

  std::string uri() const { return type + "." + id; }
};

// One entry of the init order. `unsatisfied` is non-OK when the plugin cannot
// be initialized (a missing requirement or a dependency cycle), with the reason.
struct GraphNode {
  const Registration* registration = nullptr;
  errdefs::Status unsatisfied;
};

class Registry {
 public:
  // Rejects an empty type or id, a duplicate type+id, a missing init, and a "*"
  // requirement that is not alone, with a message naming the plugin.
  errdefs::Status add(Registration r);
  // add() for plugin modules' register_plugin functions: a rejection is kept in
  // rejected(), which the daemon checks before it starts.
  void register_plugin(Registration r);
  const std::vector<errdefs::Status>& rejected() const { return rejected_; }

  // Deterministic init order: registration order, each plugin after what it
  // requires, "*" plugins last. Plugins for which `disabled` returns true are
  // left out.
  std::vector<GraphNode> graph(const std::function<bool(const Registration&)>& disabled = {}) const;

  const std::vector<std::unique_ptr<Registration>>& registrations() const { return registrations_; }

 private:
  std::vector<std::unique_ptr<Registration>> registrations_;
  std::vector<errdefs::Status> rejected_;
};

// An initialized (or failed, or skipped) plugin.
class Plugin {
 public:
  Plugin(const Registration& r, Meta meta, Instance instance, errdefs::Status error)
      : registration_(&r), meta_(std::move(meta)), instance_(std::move(instance)), error_(std::move(error)) {}

  const Registration& registration() const { return *registration_; }
  const Meta& meta() const { return meta_; }
  const Instance& instance() const { return instance_; }
  const errdefs::Status& error() const { return error_; }
  bool ok() const { return error_.ok(); }
  // "ok", "skip" or "error".
  std::string_view status() const;

  // The instance as T, or why not (the init error, or a wrong type).
  template <typename T>
  errdefs::StatusOr<std::shared_ptr<T>> get() const {
    if (!error_.ok()) return error_.with_context(registration_->uri());
    return instance_.get<T>();
  }

 private:
  const Registration* registration_;
  Meta meta_;
  Instance instance_;
  errdefs::Status error_;
};

// Initialized plugins in init order, indexed by type and id.
class Set {
 public:
  // AlreadyExists if a plugin with the same type and id is in the set.
  errdefs::Status add(std::shared_ptr<Plugin> p);

  const std::vector<std::shared_ptr<Plugin>>& ordered() const { return ordered_; }
  const Plugin* find(std::string_view type, std::string_view id) const;
  // Plugins of `type`, in init order.
  std::vector<const Plugin*> of_type(std::string_view type) const;

 private:
  std::vector<std::shared_ptr<Plugin>> ordered_;
  std::map<std::string, std::map<std::string, Plugin*, std::less<>>, std::less<>> by_type_;
};

// What a plugin's init receives.
class InitContext {
 public:
  struct Options {
    std::string root;  // the daemon's root; the plugin's is <root>/<uri>
    std::string state;
    std::string grpc_address;
    std::string ttrpc_address;
    std::shared_ptr<events::Exchange> events;
    // Where blocking work started by calls runs (owned and stopped by the server).
    std::shared_ptr<executor::WorkerPool> blocking;
  };

  InitContext(const Registration& r, Options options, std::shared_ptr<ConfigHolder> config,
              std::shared_ptr<const Set> plugins);

  const Registration& registration() const { return *registration_; }
  const std::string& root() const { return root_; }
  const std::string& state() const { return state_; }
  const std::string& grpc_address() const { return options_.grpc_address; }
  const std::string& ttrpc_address() const { return options_.ttrpc_address; }
  const std::shared_ptr<events::Exchange>& events() const { return options_.events; }
  const std::shared_ptr<executor::WorkerPool>& blocking() const { return options_.blocking; }
  Meta& meta() { return meta_; }

  // The plugin's decoded config as T; an error if it declared another type.
  template <typename T>
  errdefs::StatusOr<T> config() const {
    auto* typed = dynamic_cast<const TypedConfig<T>*>(config_.get());
    if (typed == nullptr) {
      return errdefs::InvalidArgument(registration_->uri() + ": config is not " +
                                      Instance::demangle(typeid(T).name()));
    }
    return typed->value;
  }

  // The first initialized plugin of `type` (in init order) as T.
  template <typename T>
  errdefs::StatusOr<std::shared_ptr<T>> get(std::string_view type) const {
    CTRD_ASSIGN_OR_RETURN(const Plugin* p, first_of(type));
    return p->get<T>();
  }
  template <typename T>
  errdefs::StatusOr<std::shared_ptr<T>> get_by_id(std::string_view type, std::string_view id) const {
    const Plugin* p = plugins_->find(type, id);
    if (p == nullptr)
      return errdefs::NotFound("plugin " + std::string(type) + "." + std::string(id) + " not initialized");
    return p->get<T>();
  }
  // Every plugin of `type` initialized so far, by id (failed ones included).
  std::map<std::string, const Plugin*> get_by_type(std::string_view type) const;
  // Every plugin initialized so far, in order.
  std::vector<const Plugin*> get_all() const;
  // The set itself; it keeps growing as later plugins initialize.
  const std::shared_ptr<const Set>& plugins() const { return plugins_; }

 private:
  errdefs::StatusOr<const Plugin*> first_of(std::string_view type) const;

  const Registration* registration_;
  Options options_;
  std::string root_;
  std::string state_;
  std::shared_ptr<ConfigHolder> config_;
  std::shared_ptr<const Set> plugins_;
  Meta meta_;
};

}  // namespace ctrd::plugin
