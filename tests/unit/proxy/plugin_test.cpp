// `[proxy_plugins]` from config to registered plugins: parsing, types, errors
// naming the entry, init without the server, and ordering before metadata.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/config.h"
#include "content/content.h"
#include "diff/diff.h"
#include "fixture.h"
#include "metadata/plugin.h"
#include "proxy/plugin.h"
#include "snapshots/snapshotter.h"

namespace ctrd::proxy {
namespace {

using errdefs::Code;

config::ServerConfig parse(const std::string& text) {
  auto table = config::parse(text, "test.toml");
  EXPECT_TRUE(table.ok()) << table.status().message();
  auto loaded = config::decode(*table);
  EXPECT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE(loaded->warnings.empty());
  return loaded->server;
}

const plugin::Registration* find(const plugin::Registry& r, std::string_view type, std::string_view id) {
  for (const auto& reg : r.registrations())
    if (reg->type == type && reg->id == id) return reg.get();
  return nullptr;
}

TEST(ProxyConfig, ParsesEntriesByName) {
  auto cfg = parse(R"(
version = 2
[proxy_plugins.extsnap]
  type = "snapshot"
  address = "/run/extsnap.sock"
[proxy_plugins."ext.content"]
  type = "content"
  address = "/run/extcontent.sock"
)");
  ASSERT_EQ(cfg.proxy_plugins.size(), 2u);
  EXPECT_EQ(cfg.proxy_plugins.at("extsnap").type, "snapshot");
  EXPECT_EQ(cfg.proxy_plugins.at("extsnap").address, "/run/extsnap.sock");
  EXPECT_EQ(cfg.proxy_plugins.at("ext.content").type, "content");
}

TEST(ProxyConfig, BadShapesNameTheKey) {
  auto table = config::parse("[proxy_plugins.x]\ntype = 3\n", "t.toml");
  ASSERT_TRUE(table.ok());
  auto loaded = config::decode(*table);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("proxy_plugins.x.type"), std::string::npos)
      << loaded.status().message();

  table = config::parse("[proxy_plugins.x]\ntype = \"snapshot\"\naddress = \"/s\"\nfoo = 1\n", "t.toml");
  ASSERT_TRUE(table.ok());
  loaded = config::decode(*table);
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_NE(loaded->warnings[0].find("proxy_plugins.x.foo"), std::string::npos);
}

TEST(ProxyPlugins, RegistersOnePluginPerEntryWithItsType) {
  config::ServerConfig cfg;
  cfg.proxy_plugins = {{"extsnap", {"snapshot", "/s.sock"}},
                       {"extcontent", {"io.containerd.content.v1", "/c.sock"}},
                       {"extdiff", {"diff", "/d.sock"}}};
  plugin::Registry registry;
  ASSERT_TRUE(register_proxy_plugins(registry, cfg).ok());
  EXPECT_NE(find(registry, plugin::type::kSnapshot, "extsnap"), nullptr);
  EXPECT_NE(find(registry, plugin::type::kContent, "extcontent"), nullptr);
  EXPECT_NE(find(registry, plugin::type::kDiff, "extdiff"), nullptr);
  EXPECT_EQ(registry.registrations().size(), 3u);
}

TEST(ProxyPlugins, UnknownTypeOrNoAddressNamesTheEntry) {
  plugin::Registry registry;
  config::ServerConfig cfg;
  cfg.proxy_plugins = {{"good", {"snapshot", "/s.sock"}}, {"weird", {"runtime", "/r.sock"}}};
  auto s = register_proxy_plugins(registry, cfg);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("proxy_plugins.weird"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("unsupported proxy plugin type"), std::string::npos);
  EXPECT_TRUE(registry.registrations().empty());

  cfg.proxy_plugins = {{"noaddr", {"content", ""}}};
  s = register_proxy_plugins(registry, cfg);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("proxy_plugins.noaddr"), std::string::npos) << s.message();
}

TEST(ProxyPlugins, ClashWithARegisteredPluginIsAnError) {
  plugin::Registry registry;
  ASSERT_TRUE(registry
                  .add({.type = std::string(plugin::type::kSnapshot),
                        .id = "native",
                        .init = [](plugin::InitContext&) -> errdefs::StatusOr<plugin::Instance> {
                          return errdefs::Skip("unused");
                        }})
                  .ok());
  config::ServerConfig cfg;
  cfg.proxy_plugins = {{"native", {"snapshot", "/s.sock"}}};
  EXPECT_EQ(register_proxy_plugins(registry, cfg).code(), Code::kAlreadyExists);
}

TEST(ProxyPlugins, SnapshottersComeBeforeMetadata) {
  plugin::Registry registry;
  metadata::register_plugin(registry);  // registered first, as among the built-ins
  config::ServerConfig cfg;
  cfg.proxy_plugins = {{"extsnap", {"snapshot", "/s.sock"}}, {"extcontent", {"content", "/c.sock"}}};
  ASSERT_TRUE(register_proxy_plugins(registry, cfg).ok());
  auto order = registry.graph();
  auto pos = [&](std::string_view uri) {
    return std::find_if(order.begin(), order.end(),
                        [&](const auto& n) { return n.registration->uri() == uri; }) -
           order.begin();
  };
  const auto metadata = pos("io.containerd.metadata.v1.lmdb");
  ASSERT_LT(metadata, static_cast<long>(order.size()));
  EXPECT_LT(pos("io.containerd.snapshotter.v1.extsnap"), metadata);
  EXPECT_LT(pos("io.containerd.content.v1.extcontent"), metadata);
  for (const auto& n : order) EXPECT_TRUE(n.unsatisfied.ok()) << n.registration->uri();
}

TEST(ProxyPlugins, InitNeedsNoServerAndExportsTheAddress) {
  testing::TempDir dir;
  const std::string sock = dir.str() + "/absent.sock";
  config::ServerConfig cfg;
  cfg.proxy_plugins = {
      {"extsnap", {"snapshot", sock}}, {"extcontent", {"content", sock}}, {"extdiff", {"diff", sock}}};
  plugin::Registry registry;
  ASSERT_TRUE(register_proxy_plugins(registry, cfg).ok());
  auto set = std::make_shared<plugin::Set>();
  for (const auto& r : registry.registrations()) {
    plugin::InitContext ic(*r, {}, nullptr, set);
    auto instance = r->init(ic);
    ASSERT_TRUE(instance.ok()) << r->uri() << ": " << instance.status().message();
    EXPECT_EQ(ic.meta().exports.at("address"), sock);
    ASSERT_EQ(ic.meta().platforms.size(), 1u);
    EXPECT_EQ(ic.meta().platforms[0], plugin::host_platform());
    if (r->type == plugin::type::kSnapshot) {
      auto sn = instance->get<snapshots::Snapshotter>();
      ASSERT_TRUE(sn.ok());
      EXPECT_EQ((*sn)->stat("x").status().code(), Code::kUnavailable);
    } else if (r->type == plugin::type::kContent) {
      auto store = instance->get<content::Store>();
      ASSERT_TRUE(store.ok());
      EXPECT_EQ((*store)->info("sha256:" + std::string(64, 'a')).status().code(), Code::kUnavailable);
    } else {
      auto differ = instance->get<diff::Differ>();
      ASSERT_TRUE(differ.ok());
      EXPECT_TRUE(instance->get<diff::Applier>().ok());
      auto applied = (*differ)->apply({.ns = "default", .layer = {}, .mounts = {}});
      EXPECT_EQ(applied.status().code(), Code::kUnavailable);
    }
  }
}

}  // namespace
}  // namespace ctrd::proxy
