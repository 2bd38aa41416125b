// A stand-alone use of ctrd's plugin library: register a few plugins with
// dependencies and a typed config, order them, initialize them, print the order.
//
//   $ ./build/examples/plugin_graph
#include <iostream>
#include <memory>

#include "plugin/plugin.h"

namespace {

using namespace ctrd;

struct Greeter {
  virtual ~Greeter() = default;
  virtual std::string greet() const = 0;
};

struct GreeterConfig {
  std::string greeting = "hello";
  void bind(config::Binder& b) { b.field("greeting", greeting); }
};

struct ConsoleGreeter : Greeter {
  explicit ConsoleGreeter(std::string g) : greeting(std::move(g)) {}
  std::string greet() const override { return greeting; }
  std::string greeting;
};

}  // namespace

int main() {
  plugin::Registry registry;
  // Registered out of order on purpose: the graph sorts them.
  registry.register_plugin({
      .type = "example.service.v1",
      .id = "welcome",
      .requirements = {"example.greeter.v1"},
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(auto greeter, ic.get<Greeter>("example.greeter.v1"));
        std::cout << "  welcome says: " << greeter->greet() << ", world\n";
        return plugin::Instance();
      },
  });
  registry.register_plugin({
      .type = "example.greeter.v1",
      .id = "console",
      .config = plugin::typed_config<GreeterConfig>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(auto cfg, ic.config<GreeterConfig>());
        return plugin::Instance::of<ConsoleGreeter, Greeter>(std::make_shared<ConsoleGreeter>(cfg.greeting));
      },
  });
  registry.register_plugin({
      .type = "example.audit.v1",
      .id = "last",
      .requirements = {"*"},
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        std::cout << "  audit sees " << ic.get_all().size() << " plugins before it\n";
        return plugin::Instance();
      },
  });
  registry.register_plugin({
      .type = "example.broken.v1",
      .id = "needs-nothing-that-exists",
      .requirements = {"example.missing.v1"},
      .init = [](plugin::InitContext&) -> errdefs::StatusOr<plugin::Instance> { return plugin::Instance(); },
  });

  auto set = std::make_shared<plugin::Set>();
  std::cout << "init order:\n";
  for (const auto& node : registry.graph()) {
    const auto& r = *node.registration;
    std::cout << "- " << r.uri() << "\n";
    errdefs::Status error = node.unsatisfied;
    plugin::Instance instance;
    std::shared_ptr<plugin::ConfigHolder> config = r.config ? r.config() : nullptr;
    plugin::InitContext ic(r, {.root = "/tmp/example", .state = "/tmp/example-state"}, config, set);
    if (error.ok()) {
      auto result = r.init(ic);
      if (result.ok())
        instance = std::move(result).value();
      else
        error = result.status();
    }
    auto p = std::make_shared<plugin::Plugin>(r, ic.meta(), std::move(instance), error);
    if (!p->ok()) std::cout << "  " << p->status() << ": " << p->error().message() << "\n";
    (void)set->add(std::move(p));
  }
  return 0;
}
