#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"

namespace ctrd::config {
namespace {

namespace fs = std::filesystem;

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ctrd-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(ConfigFiles, DefaultsWithoutAFile) {
  auto cfg = load((dir_ / "absent.toml").string(), /*must_exist=*/false);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server.root, "/var/lib/ctrd");
  EXPECT_EQ(cfg->server.state, "/run/ctrd");
  EXPECT_EQ(cfg->server.grpc.address, "/run/ctrd/ctrd.sock");
  EXPECT_EQ(cfg->server.ttrpc_address(), "/run/ctrd/ctrd.sock.ttrpc");
  EXPECT_EQ(cfg->server.grpc.max_recv_message_size, 16 << 20);
  EXPECT_FALSE(load((dir_ / "absent.toml").string(), /*must_exist=*/true).ok());
}

TEST_F(ConfigFiles, EveryServerKeyDecodes) {
  auto path = write("c.toml", R"(
version = 2
root = "/r"
state = "/s"
temp = "/t"
disabled_plugins = ["a"]
required_plugins = ["b"]
oom_score = -999
[grpc]
address = "/s/x.sock"
tcp_address = "127.0.0.1:1"
tcp_tls_ca = "ca"
tcp_tls_cert = "cert"
tcp_tls_key = "key"
uid = 1
gid = 2
max_recv_message_size = 100
max_send_message_size = 200
[ttrpc]
address = "/s/t.sock"
uid = 3
gid = 4
[debug]
level = "debug"
format = "json"
[metrics]
address = "127.0.0.1:2"
[timeouts]
"io.containerd.timeout.shim.cleanup" = "5s"
)");
  auto cfg = load(path, true);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_TRUE(cfg->warnings.empty()) << cfg->warnings.front();
  const auto& s = cfg->server;
  EXPECT_EQ(s.root, "/r");
  EXPECT_EQ(s.temp, "/t");
  EXPECT_EQ(s.oom_score, -999);
  EXPECT_EQ(s.grpc.tcp_tls_key, "key");
  EXPECT_EQ(s.grpc.gid, 2u);
  EXPECT_EQ(s.grpc.max_send_message_size, 200);
  EXPECT_EQ(s.ttrpc_address(), "/s/t.sock");
  EXPECT_EQ(s.debug.level, "debug");
  EXPECT_EQ(s.metrics.address, "127.0.0.1:2");
  EXPECT_EQ(s.timeouts.at("io.containerd.timeout.shim.cleanup"), "5s");
}

TEST_F(ConfigFiles, MalformedTomlGivesFileLineColumn) {
  auto path = write("bad.toml", "version = 2\n\n[grpc\n");
  auto cfg = load(path, true);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_NE(cfg.status().message().find(path + ":3:"), std::string::npos) << cfg.status().message();
}

TEST_F(ConfigFiles, BadDurationNamesTimeoutKey) {
  auto cfg = load(write("c.toml", "[timeouts]\n\"io.x\" = \"later\"\n"), true);
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("timeouts.\"io.x\""), std::string::npos) << cfg.status().message();
}

TEST_F(ConfigFiles, UnknownKeysAreWarnings) {
  auto cfg = load(write("c.toml", "nope = 1\n[grpc]\nwhat = 2\n"), true);
  ASSERT_TRUE(cfg.ok());
  ASSERT_EQ(cfg->warnings.size(), 2u);
  EXPECT_NE(cfg->warnings[0].find("grpc.what"), std::string::npos);
  EXPECT_NE(cfg->warnings[1].find("nope"), std::string::npos);
}

TEST_F(ConfigFiles, ImportsMergeInOrderAndReplacePluginSections) {
  write("conf.d/10-a.toml", "root = \"/from-a\"\n[grpc]\nuid = 5\n[plugins.\"io.x.v1.p\"]\nk1 = \"a\"\n");
  write("conf.d/20-b.toml", "root = \"/from-b\"\n[plugins.\"io.x.v1.p\"]\nk2 = \"b\"\n");
  auto path = write("main.toml",
                    "version = 2\nimports = [\"conf.d/*.toml\"]\nstate = \"/main\"\n[grpc]\ngid = 7\n"
                    "[plugins.\"io.x.v1.p\"]\nk0 = \"main\"\n");
  auto cfg = load(path, true);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->files.size(), 3u);
  EXPECT_EQ(cfg->server.root, "/from-b");
  EXPECT_EQ(cfg->server.state, "/main");
  EXPECT_EQ(cfg->server.grpc.uid, 5u);
  EXPECT_EQ(cfg->server.grpc.gid, 7u);
  const toml::table* p = cfg->plugin_section("io.x.v1", "p");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->contains("k0"));
  EXPECT_FALSE(p->contains("k1"));
  EXPECT_TRUE(p->contains("k2"));
}

TEST_F(ConfigFiles, Version1KeysPluginsById) {
  auto cfg = load(write("c.toml", "version = 1\n[plugins.cri]\nx = 1\n"), true);
  ASSERT_TRUE(cfg.ok());
  EXPECT_NE(cfg->plugin_section("io.containerd.grpc.v1", "cri"), nullptr);
  auto v2 = load(write("d.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nx = 1\n"), true);
  ASSERT_TRUE(v2.ok());
  EXPECT_NE(v2->plugin_section("io.containerd.grpc.v1", "cri"), nullptr);
  EXPECT_FALSE(load(write("e.toml", "version = 3\n"), true).ok());
}

}  // namespace
}  // namespace ctrd::config
