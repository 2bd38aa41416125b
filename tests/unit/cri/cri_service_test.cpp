#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config/binder.h"
#include "cri/cni_config.h"
#include "cri/config.h"
#include "cri/cri_service.h"
#include "cri/image_store.h"
#include "support/temp_dir.h"

namespace ctrd::cri {
namespace {

using ctrd::testing::TempDir;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

TEST(CriConfig, DefaultsAreContainerdsAndPrintAsItDoes) {
  Config config;
  auto encoded = config::encode_from(config);
  EXPECT_EQ(encoded->at_path("sandbox_image").value<std::string>(), "registry.k8s.io/pause:3.6");
  EXPECT_EQ(encoded->at_path("stream_idle_timeout").value<std::string>(), "4h0m0s");
  EXPECT_EQ(encoded->at_path("stream_server_port").value<std::string>(), "0");
  EXPECT_EQ(encoded->at_path("max_container_log_line_size").value<int64_t>(), 16384);
  EXPECT_EQ(encoded->at_path("cni.bin_dir").value<std::string>(), "/opt/cni/bin");
  EXPECT_EQ(encoded->at_path("cni.max_conf_num").value<int64_t>(), 1);
  EXPECT_EQ(encoded->at_path("containerd.snapshotter").value<std::string>(), "overlayfs");
  EXPECT_EQ(encoded->at_path("containerd.runtimes.runc.runtime_type").value<std::string>(),
            "io.containerd.runc.v2");
  EXPECT_EQ(encoded->at_path("containerd.runtimes.runc.options.SystemdCgroup").value<bool>(), false);
  ASSERT_NE(config.default_runtime(), nullptr);
  EXPECT_EQ(config.default_runtime()->runtime_type, "io.containerd.runc.v2");
}

TEST(CriConfig, AKubeletNodesFileDecodesWithoutUnknownKeys) {
  Config config;
  auto table = toml::parse(R"(
sandbox_image = "registry.k8s.io/pause:3.6"
restrict_oom_score_adj = true
netns_mounts_under_state_dir = true
stream_server_port = "10010"
[cni]
bin_dir = "/usr/lib/cni"
conf_dir = "/etc/cni/net.d"
[containerd]
default_runtime_name = "crun"
[containerd.runtimes.crun]
runtime_type = "io.containerd.runc.v2"
pod_annotations = ["io.kubernetes.cri.*"]
[containerd.runtimes.crun.options]
BinaryName = "/usr/bin/crun"
Root = "/run/crun"
SystemdCgroup = true
[registry]
config_path = "/etc/containerd/certs.d"
[registry.mirrors."docker.io"]
endpoint = ["http://127.0.0.1:5000"]
[registry.configs."127.0.0.1:5000".auth]
username = "u"
password = "p"
[registry.configs."127.0.0.1:5000".tls]
insecure_skip_verify = true
)");
  auto report = config::decode_into(table, "plugins.\"io.containerd.grpc.v1.cri\"", config);
  ASSERT_TRUE(report.error.ok()) << report.error.message();
  EXPECT_TRUE(report.unknown_keys.empty()) << report.unknown_keys.front();
  EXPECT_TRUE(config.restrict_oom_score_adj);
  EXPECT_EQ(config.stream_server_port, "10010");
  ASSERT_EQ(config.containerd.runtimes.size(), 2u);  // runc stays, crun is added
  const Runtime* crun = config.default_runtime();
  ASSERT_NE(crun, nullptr);
  EXPECT_EQ(crun->options.binary_name, "/usr/bin/crun");
  EXPECT_TRUE(crun->options.systemd_cgroup);
  EXPECT_EQ(crun->pod_annotations, std::vector<std::string>{"io.kubernetes.cri.*"});
  EXPECT_EQ(config.registry.mirrors["docker.io"].endpoint, std::vector<std::string>{"http://127.0.0.1:5000"});
  EXPECT_EQ(config.registry.configs["127.0.0.1:5000"].auth.username, "u");
  EXPECT_TRUE(config.registry.configs["127.0.0.1:5000"].tls.insecure_skip_verify);
}

TEST(CniConfig, LoadsValidFilesInNameOrderUpToTheLimit) {
  TempDir dir;
  write(dir.sub("20-b.conflist"), R"({"cniVersion":"0.4.0","name":"b","plugins":[{"type":"bridge"}]})");
  write(dir.sub("10-a.conf"), R"({"cniVersion":"0.4.0","name":"a","type":"bridge","bridge":"cni0"})");
  write(dir.sub("05-broken.conflist"), "{not json");
  write(dir.sub("06-noplugins.conflist"), R"({"name":"x","plugins":[]})");
  write(dir.sub("99-ignored.txt"), R"({"name":"t","type":"bridge"})");

  auto one = load_network_configs(dir.str(), 1);
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(one->front().name, "a");
  // A single plugin's file is served as a list of one.
  auto list = nlohmann::json::parse(one->front().conflist);
  EXPECT_EQ(list["plugins"][0]["bridge"], "cni0");
  EXPECT_EQ(list["cniVersion"], "0.4.0");

  auto all = load_network_configs(dir.str(), 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].name, "b");

  TempDir empty;
  auto none = load_network_configs(empty.str(), 1);
  EXPECT_EQ(none.status().code(), errdefs::Code::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("cni plugin not initialized"), std::string::npos);
}

TEST(CniTemplate, RendersTheRangesAndRoutesOfADualStackNode) {
  const std::string text =
      R"({"ranges": [{{range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}],)"
      R"( "routes": [{{range $i, $route := .Routes}}{{if $i}}, {{end}}{"dst": "{{$route}}"}{{end}}],)"
      R"( "first": "{{.PodCIDR}}", "dots": "{{range .Routes}}{{.}};{{end}}"})";
  auto out = render_cni_template(text, template_data_for({"10.88.0.0/16", "fd00::/64"}));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(
      *out,
      R"({"ranges": [[{"subnet": "10.88.0.0/16"}], [{"subnet": "fd00::/64"}]], "routes": [{"dst": "0.0.0.0/0"}, )"
      R"({"dst": "::/0"}], "first": "10.88.0.0/16", "dots": "0.0.0.0/0;::/0;"})");

  EXPECT_EQ(render_cni_template("{{- \n .PodCIDR -}}  x", template_data_for({"10.1.0.0/24"})).value(),
            "10.1.0.0/24x");
  EXPECT_EQ(render_cni_template("{{.Nope}}", {}).status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(render_cni_template("{{range .Routes}}", {}).status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(render_cni_template("{{end}}", {}).status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(render_cni_template("{{.PodCIDRRanges}}", {}).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(CriService, NetworkBecomesReadyWhenUpdateRuntimeConfigRendersTheTemplate) {
  TempDir dir;
  Config config;
  config.cni.conf_dir = dir.sub("net.d");
  config.cni.conf_template = dir.sub("template.json");
  write(config.cni.conf_template,
        R"({"cniVersion":"0.4.0","name":"pods","plugins":[{"type":"bridge","ipam":{"type":"host-local",)"
        R"("ranges":[{{range $i, $r := .PodCIDRRanges}}{{if $i}},{{end}}[{"subnet":"{{$r}}"}]{{end}}]}}]})");
  CriService service(config);

  RuntimeStatus before = service.status(false);
  ASSERT_EQ(before.conditions.size(), 2u);
  EXPECT_EQ(before.conditions[0].type, "RuntimeReady");
  EXPECT_TRUE(before.conditions[0].status);
  EXPECT_EQ(before.conditions[1].type, "NetworkReady");
  EXPECT_FALSE(before.conditions[1].status);
  EXPECT_EQ(before.conditions[1].reason, "NetworkPluginNotReady");
  EXPECT_TRUE(before.info.empty());

  ASSERT_TRUE(service.update_runtime_config("").ok());  // nothing to render without a CIDR
  EXPECT_FALSE(service.status(false).conditions[1].status);

  ASSERT_TRUE(service.update_runtime_config("10.99.0.0/24").ok());
  RuntimeStatus after = service.status(true);
  EXPECT_TRUE(after.conditions[1].status);
  auto written = nlohmann::json::parse(std::ifstream(dir.sub("net.d/10-containerd-net.conflist")));
  EXPECT_EQ(written["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.99.0.0/24");
  auto cni = nlohmann::json::parse(after.info.at("cniconfig"));
  EXPECT_EQ(cni["networks"][0]["name"], "pods");
  EXPECT_EQ(nlohmann::json::parse(after.info.at("config"))["podCIDR"], "10.99.0.0/24");

  // Once the network is ready, a new CIDR leaves the operator's config alone.
  write(config.cni.conf_template, "{{.Broken");
  EXPECT_TRUE(service.update_runtime_config("10.98.0.0/24").ok());
}

TEST(ImageReference, NormalizesAsDockerDoes) {
  const std::string id = "sha256:" + std::string(64, 'a');
  for (const auto& [in, out] : std::vector<std::pair<std::string, std::string>>{
           {"busybox", "docker.io/library/busybox:latest"},
           {"busybox:1.36", "docker.io/library/busybox:1.36"},
           {"library/busybox", "docker.io/library/busybox:latest"},
           {"user/app:v1", "docker.io/user/app:v1"},
           {"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
           {"registry.k8s.io/pause:3.6", "registry.k8s.io/pause:3.6"},
           {"localhost/app", "localhost/app:latest"},
           {"127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"},
           {"busybox@" + id, "docker.io/library/busybox@" + id},
           {"busybox:1.36@" + id, "docker.io/library/busybox:1.36@" + id},
           {id, id},
           {std::string(64, 'a'), id}}) {
    auto normalized = normalize_reference(in);
    ASSERT_TRUE(normalized.ok()) << in << ": " << normalized.status().to_string();
    EXPECT_EQ(*normalized, out) << in;
  }
  for (const std::string bad :
       {"", "Busybox", "busybox:", "busybox@sha256:12", "a//b", "-x", "busybox:-t", "x/.y"}) {
    EXPECT_EQ(normalize_reference(bad).status().code(), errdefs::Code::kInvalidArgument) << bad;
  }
}

TEST(ImageReference, TheUserIsAUidOrAName) {
  EXPECT_EQ(image_user("").uid, std::nullopt);
  EXPECT_EQ(image_user("").username, "");
  EXPECT_EQ(image_user("65535").uid, 65535);
  EXPECT_EQ(image_user("1000:1000").uid, 1000);
  EXPECT_EQ(image_user("nobody").username, "nobody");
  EXPECT_EQ(image_user("nobody:nogroup").username, "nobody");
  EXPECT_EQ(image_user("12ab").username, "12ab");
}

TEST(CriService, VersionNamesTheRuntimeAndTheApi) {
  CriService service{Config{}};
  RuntimeVersion v = service.version();
  EXPECT_EQ(v.version, "0.1.0");
  EXPECT_EQ(v.runtime_name, "ctrd");
  EXPECT_FALSE(v.runtime_version.empty());
  EXPECT_EQ(v.runtime_api_version, "v1");
}

}  // namespace
}  // namespace ctrd::cri
