#include "snapshots/overlay/plugin.h"

#include "snapshots/overlay/overlay.h"

namespace ctrd::snapshots::overlay {

namespace {

struct Config {
  std::string root_path;  // empty: the plugin's root
  bool upperdir_label = false;
  // Accepted for containerd's configs; removal is always synchronous here.
  bool sync_remove = false;
  void bind(config::Binder& b) {
    b.field("root_path", root_path);
    b.field("upperdir_label", upperdir_label);
    b.field("sync_remove", sync_remove);
  }
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kSnapshot),
      .id = "overlayfs",
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        const std::string root = config.root_path.empty() ? ic.root() : config.root_path;
        ic.meta().platforms.push_back(plugin::host_platform());
        std::jthread teardown;
        CTRD_RETURN_IF_ERROR(check_supported(root, &teardown));
        CTRD_ASSIGN_OR_RETURN(auto snapshotter, OverlaySnapshotter::open(
                                                    root, Options{.upperdir_label = config.upperdir_label}));
        snapshotter->adopt(std::move(teardown));
        CTRD_RETURN_IF_ERROR(snapshotter->cleanup());
        ic.meta().exports["root"] = root;
        return plugin::Instance::of<OverlaySnapshotter, Snapshotter>(std::move(snapshotter));
      },
  });
}

}  // namespace ctrd::snapshots::overlay
