// A loadable ctrd plugin: io.containerd.internal.v1.example, which takes a
// config and exports its greeting in its introspection Meta (`ctr plugins ls
// -d` shows it). Configure it like any plugin:
//
//   [plugins."io.containerd.internal.v1.example"]
//     greeting = "hello from a loadable plugin"
#include <memory>
#include <string>

#include <log/log.h>
#include <plugin/loadable.h>

namespace {

using namespace ctrd;

struct Config {
  std::string greeting = "hello from a loadable plugin";
  void bind(config::Binder& b) { b.field("greeting", greeting); }
};

class Greeter {
 public:
  explicit Greeter(std::string greeting) : greeting_(std::move(greeting)) {}
  const std::string& greeting() const { return greeting_; }

 private:
  std::string greeting_;
};

errdefs::StatusOr<plugin::Instance> init(plugin::InitContext& ic) {
  CTRD_ASSIGN_OR_RETURN(Config cfg, ic.config<Config>());
  if (cfg.greeting.empty()) return errdefs::InvalidArgument("greeting must not be empty");
  ic.meta().exports["greeting"] = cfg.greeting;
  log::info("example plugin says", {{"greeting", cfg.greeting}});
  return plugin::Instance::of<Greeter>(std::make_shared<Greeter>(cfg.greeting));
}

}  // namespace

CTRD_PLUGIN_ENTRY(registry) {
  registry.register_plugin({
      .type = std::string(ctrd::plugin::type::kInternal),
      .id = "example",
      .config = ctrd::plugin::typed_config<Config>(),
      .init = init,
  });
}
