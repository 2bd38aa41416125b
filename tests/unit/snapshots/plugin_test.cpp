#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "plugin/plugin.h"
#include "snapshots/native/plugin.h"
#include "snapshots/overlay/plugin.h"
#include "snapshots/snapshotter.h"
#include "support/temp_dir.h"

namespace ctrd::snapshots {
namespace {

using ctrd::testing::TempDir;

// Runs the one registration in `registry` with the daemon root `root`.
errdefs::StatusOr<std::shared_ptr<Snapshotter>> init_only(const plugin::Registry& registry,
                                                          const std::string& root, plugin::Meta* meta) {
  EXPECT_TRUE(registry.rejected().empty());
  const auto& r = *registry.registrations().at(0);
  EXPECT_EQ(r.type, plugin::type::kSnapshot);
  plugin::InitContext ic(r, {.root = root, .state = root + "/state"}, r.config(),
                         std::make_shared<plugin::Set>());
  CTRD_ASSIGN_OR_RETURN(plugin::Instance instance, r.init(ic));
  *meta = ic.meta();
  return instance.get<Snapshotter>();
}

TEST(SnapshotterPlugins, NativeRegistersAndOpensUnderItsRoot) {
  TempDir dir;
  plugin::Registry registry;
  native::register_plugin(registry);
  EXPECT_EQ(registry.registrations().at(0)->id, "native");
  plugin::Meta meta;
  auto sn = init_only(registry, dir.str(), &meta);
  ASSERT_TRUE(sn.ok()) << sn.status().to_string();
  const std::string root = dir.sub("io.containerd.snapshotter.v1.native");
  EXPECT_EQ(meta.exports.at("root"), root);
  ASSERT_EQ(meta.platforms.size(), 1u);
  EXPECT_EQ(meta.platforms[0].os, "linux");
  EXPECT_TRUE(std::filesystem::is_directory(root + "/snapshots"));
  EXPECT_TRUE((*sn)->prepare("a", "", {}).ok());
}

TEST(SnapshotterPlugins, OverlayRegistersAndIsSkippedOrWorks) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  plugin::Registry registry;
  overlay::register_plugin(registry);
  EXPECT_EQ(registry.registrations().at(0)->id, "overlayfs");
  plugin::Meta meta;
  auto sn = init_only(registry, dir.str(), &meta);
  if (!sn.ok()) {
    // Only a Skip is acceptable: the host's filesystem may not carry overlay upper dirs.
    EXPECT_EQ(sn.status().code(), errdefs::Code::kSkip) << sn.status().to_string();
    EXPECT_NE(sn.status().message().find("overlayfs is not supported"), std::string::npos);
    return;
  }
  EXPECT_EQ(meta.exports.at("root"), dir.sub("io.containerd.snapshotter.v1.overlayfs"));
  EXPECT_TRUE((*sn)->prepare("a", "", {}).ok());
}

}  // namespace
}  // namespace ctrd::snapshots
