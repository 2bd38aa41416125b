#include "snapshots/native/plugin.h"

#include "snapshots/native/native.h"

namespace ctrd::snapshots::native {

namespace {

struct Config {
  std::string root_path;  // empty: the plugin's root
  void bind(config::Binder& b) { b.field("root_path", root_path); }
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kSnapshot),
      .id = "native",
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        const std::string root = config.root_path.empty() ? ic.root() : config.root_path;
        ic.meta().platforms.push_back(plugin::host_platform());
        CTRD_ASSIGN_OR_RETURN(auto snapshotter, NativeSnapshotter::open(root));
        CTRD_RETURN_IF_ERROR(snapshotter->cleanup());
        ic.meta().exports["root"] = root;
        return plugin::Instance::of<NativeSnapshotter, Snapshotter>(std::move(snapshotter));
      },
  });
}

}  // namespace ctrd::snapshots::native
