#include "metadata/plugin.h"

#include "content/content.h"
#include "metadata/db.h"
#include "snapshots/snapshotter.h"

namespace ctrd::metadata {

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kMetadata),
      .id = "lmdb",
      .requirements = {std::string(plugin::type::kContent)},
      .optional_requirements = {std::string(plugin::type::kSnapshot)},
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(auto blobs, ic.get<content::Store>(plugin::type::kContent));
        // Every snapshotter that came up, by id; failed ones are left out as
        // containerd leaves them out.
        DB::Snapshotters snapshotters;
        for (const auto& [id, p] : ic.get_by_type(plugin::type::kSnapshot)) {
          if (!p->ok()) continue;
          auto snapshotter = p->get<snapshots::Snapshotter>();
          if (snapshotter.ok()) snapshotters.emplace(id, std::move(*snapshotter));
        }
        CTRD_ASSIGN_OR_RETURN(auto db, DB::open(ic.root(), blobs, std::move(snapshotters)));
        ic.meta().exports["root"] = ic.root();
        return plugin::Instance::of(std::move(db));
      },
  });
}

}  // namespace ctrd::metadata
