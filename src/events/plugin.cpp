#include "events/plugin.h"

#include "events/exchange.h"

namespace ctrd::events {

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kEvent),
      .id = "exchange",
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        if (!ic.events()) return errdefs::FailedPrecondition("the server provided no event exchange");
        return plugin::Instance::of(ic.events());
      },
  });
}

}  // namespace ctrd::events
