#include "content/local/plugin.h"

#include "content/local/store.h"

namespace ctrd::content::local {

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kContent),
      .id = "content",
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(std::shared_ptr<Store> store, open_store(ic.root()));
        ic.meta().exports["root"] = ic.root();
        return plugin::Instance::of<Store>(std::move(store));
      },
  });
}

}  // namespace ctrd::content::local
