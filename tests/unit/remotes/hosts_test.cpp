#include "remotes/hosts.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace ctrd::remotes {
namespace {

using testing::TempDir;

std::vector<RegistryHost> parsed(std::string_view toml,
                                 const std::string& base = "/etc/containerd/certs.d/h") {
  auto r = parse_hosts_toml(toml, base);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::vector<RegistryHost>{};
}

TEST(HostsToml, HostsInFileOrderThenServer) {
  auto hosts = parsed(R"(
server = "https://registry.example.com"

[host."https://zz-mirror.example.com"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  ca = "mirror-ca.crt"
  client = [["/abs/client.cert", "client.key"], "both.pem"]
  [host."https://zz-mirror.example.com".header]
    x-custom = "1"
    x-multi = ["a", "b"]

[host."http://aa-mirror.example.com:5000/sub/"]
  capabilities = ["pull"]
  ca = ["a.crt", "/b.crt"]
)");
  ASSERT_EQ(hosts.size(), 3u);
  // File order, not alphabetical.
  EXPECT_EQ(hosts[0].host, "zz-mirror.example.com");
  EXPECT_EQ(hosts[0].scheme, "https");
  EXPECT_EQ(hosts[0].path, "/v2");
  EXPECT_EQ(hosts[0].capabilities, kCapabilityPull | kCapabilityResolve);
  EXPECT_TRUE(hosts[0].skip_verify);
  EXPECT_EQ(hosts[0].ca_files, std::vector<std::string>{"/etc/containerd/certs.d/h/mirror-ca.crt"});
  ASSERT_EQ(hosts[0].client_pairs.size(), 2u);
  EXPECT_EQ(hosts[0].client_pairs[0], (std::pair<std::string, std::string>{
                                          "/abs/client.cert", "/etc/containerd/certs.d/h/client.key"}));
  EXPECT_EQ(hosts[0].client_pairs[1].second, "");
  EXPECT_EQ(hosts[0].headers, (std::vector<std::pair<std::string, std::string>>{
                                  {"x-custom", "1"}, {"x-multi", "a"}, {"x-multi", "b"}}));

  EXPECT_EQ(hosts[1].base_url(), "http://aa-mirror.example.com:5000/sub/v2");
  EXPECT_EQ(hosts[1].capabilities, kCapabilityPull);
  EXPECT_EQ(hosts[1].ca_files, (std::vector<std::string>{"/etc/containerd/certs.d/h/a.crt", "/b.crt"}));

  EXPECT_EQ(hosts[2].base_url(), "https://registry.example.com/v2");
  EXPECT_EQ(hosts[2].capabilities, kAllCapabilities);
}

TEST(HostsToml, OverridePathKeepsTheUrlPath) {
  auto hosts = parsed(R"(
[host."https://proxy.example.com/api/registry"]
  override_path = true
[host."proxy2.example.com/v2"]
)");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].base_url(), "https://proxy.example.com/api/registry");
  EXPECT_EQ(hosts[1].base_url(), "https://proxy2.example.com/v2");
  EXPECT_EQ(hosts[2].host, "");  // no server: the default endpoint, filled by configure_hosts
}

TEST(HostsToml, ErrorsNameTheProblem) {
  struct Case {
    std::string toml;
    std::string needle;
  };
  for (const auto& c : std::vector<Case>{
           {"server = ", "invalid TOML at line 1"},
           {"server = 1", "server must be a string"},
           {"[host.\"https://m\"]\ncapabilities = [\"fetch\"]", "unknown capability \"fetch\""},
           {"[host.\"https://m\"]\nskip_verify = \"yes\"", "skip_verify must be a boolean"},
           {"[host.\"https://m\"]\nca = 1", "ca must be a string or a list of strings"},
           {"[host.\"https://m\"]\nclient = [[\"a\"]]", "client must be"},
           {"[host.\"ftp://m\"]", "scheme must be http or https"},
       }) {
    auto r = parse_hosts_toml(c.toml, "/d");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_EQ(r.status().code(), errdefs::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
  }
}

TEST(ConfigureHosts, DefaultsWithoutConfiguration) {
  auto hub = configure_hosts({}, "docker.io");
  ASSERT_TRUE(hub.ok());
  ASSERT_EQ(hub->size(), 1u);
  EXPECT_EQ((*hub)[0].base_url(), "https://registry-1.docker.io/v2");
  EXPECT_EQ((*hub)[0].capabilities, kCapabilityPull | kCapabilityResolve);

  auto local = configure_hosts({}, "127.0.0.1:5000");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ((*local)[0].base_url(), "http://127.0.0.1:5000/v2");
  EXPECT_TRUE((*local)[0].skip_verify);
  EXPECT_EQ((*configure_hosts({}, "registry.example.com:443"))[0].base_url(),
            "https://registry.example.com:443/v2");
}

TEST(ConfigureHosts, LocalhostDetection) {
  for (const char* h : {"localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "::1", "[::1]:5000"}) {
    EXPECT_TRUE(is_localhost(h)) << h;
  }
  for (const char* h : {"docker.io", "10.0.0.1:5000", "localhost.example.com", "[2001:db8::1]:5000"}) {
    EXPECT_FALSE(is_localhost(h)) << h;
  }
}

TEST(ConfigureHosts, ConfigPathLooksForHostPortThenHostThenDefault) {
  TempDir dir;
  auto write = [&](const std::string& folder, const std::string& text) {
    std::ofstream(dir.mkdir(folder) + "/hosts.toml") << text;
  };
  write("registry.example.com_5000_", "server = \"https://primary.example.com\"\n");
  write("_default", "[host.\"https://fallback-mirror.example.com\"]\ncapabilities = [\"pull\"]\n");
  dir.mkdir("certs.example.com");
  std::ofstream(dir.sub("certs.example.com") + "/ca.crt") << "x";
  std::ofstream(dir.sub("certs.example.com") + "/client.cert") << "x";
  std::ofstream(dir.sub("certs.example.com") + "/client.key") << "x";

  HostsConfig config;
  config.config_path = "/nonexistent:" + dir.str();
  config.configs["primary.example.com"].auth = {"user", "pass", "", ""};

  auto port = configure_hosts(config, "registry.example.com:5000");
  ASSERT_TRUE(port.ok()) << port.status().to_string();
  ASSERT_EQ(port->size(), 1u);
  EXPECT_EQ((*port)[0].base_url(), "https://primary.example.com/v2");
  EXPECT_EQ((*port)[0].credentials, (Credentials{"user", "pass"}));

  auto other = configure_hosts(config, "docker.io");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 2u);
  EXPECT_EQ((*other)[0].base_url(), "https://fallback-mirror.example.com/v2");
  EXPECT_EQ((*other)[1].base_url(), "https://registry-1.docker.io/v2");
  EXPECT_EQ((*other)[1].capabilities, kAllCapabilities);

  auto certs = configure_hosts(config, "certs.example.com");
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 1u);
  EXPECT_EQ((*certs)[0].base_url(), "https://certs.example.com/v2");
  EXPECT_EQ((*certs)[0].ca_files, std::vector<std::string>{dir.sub("certs.example.com") + "/ca.crt"});
  ASSERT_EQ((*certs)[0].client_pairs.size(), 1u);
  EXPECT_EQ((*certs)[0].client_pairs[0].second, dir.sub("certs.example.com") + "/client.key");

  write("bad.example.com", "capabilities = [\"teleport\"]\n");
  auto bad = configure_hosts(config, "bad.example.com");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("hosts.toml"), std::string::npos) << bad.status().message();
}

TEST(ConfigureHosts, LegacyMirrorsAndConfigs) {
  HostsConfig config;
  config.mirrors["docker.io"] = {"mirror.example.com", "http://plain.example.com:8080/prefix"};
  config.mirrors["*"] = {"https://any.example.com"};
  config.configs["mirror.example.com"].tls = {true, "/ca.pem", "/c.pem", "/k.pem"};
  config.configs["mirror.example.com"].auth.auth = "dXNlcjpwYTpzcw==";  // user:pa:ss

  auto hub = configure_hosts(config, "docker.io");
  ASSERT_TRUE(hub.ok()) << hub.status().to_string();
  ASSERT_EQ(hub->size(), 3u);
  EXPECT_EQ((*hub)[0].base_url(), "https://mirror.example.com/v2");
  EXPECT_TRUE((*hub)[0].skip_verify);
  EXPECT_EQ((*hub)[0].ca_files, std::vector<std::string>{"/ca.pem"});
  EXPECT_EQ((*hub)[0].credentials, (Credentials{"user", "pa:ss"}));
  EXPECT_EQ((*hub)[1].base_url(), "http://plain.example.com:8080/prefix");
  EXPECT_EQ((*hub)[2].base_url(), "https://registry-1.docker.io/v2");
  for (const auto& h : *hub) EXPECT_EQ(h.capabilities, kCapabilityPull | kCapabilityResolve);

  // "*" serves hosts without their own entry; an endpoint on the host itself replaces the default.
  config.mirrors["*"] = {"https://any.example.com", "https://quay.io"};
  auto quay = configure_hosts(config, "quay.io");
  ASSERT_TRUE(quay.ok());
  ASSERT_EQ(quay->size(), 2u);
  EXPECT_EQ((*quay)[0].host, "any.example.com");
  EXPECT_EQ((*quay)[1].host, "quay.io");
}

TEST(LegacyAuth, ParseAuthOrder) {
  EXPECT_EQ(*parse_legacy_auth({"u", "p", "eDp5", "tok"}), (Credentials{"u", "p"}));
  EXPECT_EQ(*parse_legacy_auth({"", "", "eDp5", "tok"}), (Credentials{"", "tok"}));
  EXPECT_EQ(*parse_legacy_auth({"", "", "eDp5", ""}), (Credentials{"x", "y"}));
  EXPECT_TRUE(parse_legacy_auth({}).ok());
  EXPECT_EQ(parse_legacy_auth({"", "", "bm9jb2xvbg==", ""}).status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(parse_legacy_auth({"", "", "***", ""}).status().code(), errdefs::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrd::remotes
