#include "metadata/plugin.h"

#include "content/content.h"
#include "metadata/db.h"

namespace ctrd::metadata {

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kMetadata),
      .id = "lmdb",
      .requirements = {std::string(plugin::type::kContent)},
      .optional_requirements = {std::string(plugin::type::kSnapshot)},
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(auto blobs, ic.get<content::Store>(plugin::type::kContent));
        CTRD_ASSIGN_OR_RETURN(auto db, DB::open(ic.root(), blobs));
        ic.meta().exports["root"] = ic.root();
        return plugin::Instance::of(std::move(db));
      },
  });
}

}  // namespace ctrd::metadata
