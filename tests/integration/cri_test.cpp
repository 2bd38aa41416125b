// The CRI plugin (io.containerd.grpc.v1.cri) on a real daemon, through a CRI
// client generated from ctrd's own runtime.v1 schema.
#include <cri/runtime/v1/api.grpc.pb.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace ctrd::testing {
namespace {

namespace cri = ::runtime::v1;

std::string cri_config(const std::string& dir) {
  return "version = 2\n"
         "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
         "restrict_oom_score_adj = true\n"
         "[plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
         "bin_dir = \"/usr/lib/cni\"\n"
         "conf_dir = \"" +
         dir +
         "/net.d\"\n"
         "conf_template = \"" +
         dir + "/template.json\"\n";
}

grpc::Status call_status(cri::RuntimeService::Stub& stub, cri::StatusResponse* resp, bool verbose = false) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  cri::StatusRequest req;
  req.set_verbose(verbose);
  return stub.Status(&ctx, req, resp);
}

const cri::RuntimeCondition* condition(const cri::StatusResponse& resp, const std::string& type) {
  for (const auto& c : resp.status().conditions())
    if (c.type() == type) return &c;
  return nullptr;
}

TEST(Cri, VersionStatusAndRuntimeConfigOverTheDaemonsSocket) {
  TempDir work;
  std::ofstream(work.sub("template.json"))
      << R"({"cniVersion":"0.4.0","name":"pods","plugins":[{"type":"bridge","bridge":"ctrdcri9",)"
         R"("ipam":{"type":"host-local","ranges":[{{range $i, $r := .PodCIDRRanges}}{{if $i}},{{end}})"
         R"([{"subnet":"{{$r}}"}]{{end}}]}}]})";
  Daemon d(DaemonOptions{.config = cri_config(work.str())});
  auto runtime = cri::RuntimeService::NewStub(d.channel());

  {
    grpc::ClientContext ctx;
    cri::VersionResponse resp;
    ASSERT_TRUE(runtime->Version(&ctx, cri::VersionRequest(), &resp).ok()) << d.log();
    EXPECT_EQ(resp.version(), "0.1.0");
    EXPECT_EQ(resp.runtime_name(), "ctrd");
    EXPECT_FALSE(resp.runtime_version().empty());
    EXPECT_EQ(resp.runtime_api_version(), "v1");
  }

  cri::StatusResponse before;
  ASSERT_TRUE(call_status(*runtime, &before).ok());
  ASSERT_NE(condition(before, "RuntimeReady"), nullptr);
  EXPECT_TRUE(condition(before, "RuntimeReady")->status());
  ASSERT_NE(condition(before, "NetworkReady"), nullptr);
  EXPECT_FALSE(condition(before, "NetworkReady")->status());
  EXPECT_EQ(condition(before, "NetworkReady")->reason(), "NetworkPluginNotReady");

  {
    grpc::ClientContext ctx;
    cri::UpdateRuntimeConfigRequest req;
    req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr("10.235.0.0/24");
    cri::UpdateRuntimeConfigResponse resp;
    ASSERT_TRUE(runtime->UpdateRuntimeConfig(&ctx, req, &resp).ok());
  }
  cri::StatusResponse after;
  ASSERT_TRUE(call_status(*runtime, &after, /*verbose=*/true).ok());
  EXPECT_TRUE(condition(after, "NetworkReady")->status());
  auto written = nlohmann::json::parse(std::ifstream(work.sub("net.d/10-containerd-net.conflist")));
  EXPECT_EQ(written["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.235.0.0/24");
  ASSERT_TRUE(after.info().contains("config"));
  EXPECT_EQ(nlohmann::json::parse(after.info().at("config"))["restrictOOMScoreAdj"], true);

  // The plugin is listed like every other, under containerd's type and id.
  auto plugins = d.ctr({"plugins", "ls", "type==io.containerd.grpc.v1,id==cri"});
  EXPECT_NE(plugins.out.find("cri"), std::string::npos) << plugins.all();
  EXPECT_NE(plugins.out.find("ok"), std::string::npos) << plugins.all();
}

TEST(Cri, ImagesImportedIntoK8sIoAreListedFoundAndRemovedByTheImageService) {
  Daemon d;
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  auto images = cri::ImageService::NewStub(d.channel());

  cri::ListImagesResponse listed;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(images->ListImages(&ctx, cri::ListImagesRequest(), &listed).ok());
  }
  ASSERT_EQ(listed.images_size(), 1);
  const cri::Image& image = listed.images(0);
  EXPECT_TRUE(image.id().starts_with("sha256:")) << image.id();
  EXPECT_EQ(image.spec().image(), image.id());
  ASSERT_EQ(image.repo_tags_size(), 1);
  EXPECT_EQ(image.repo_tags(0), "docker.io/library/busybox:latest");
  EXPECT_GT(image.size(), 100'000u);  // busybox itself is over a megabyte

  // By the name a user types, by the full name and by id, all the same image.
  for (const std::string& ref :
       {std::string("busybox"), std::string("docker.io/library/busybox:latest"), image.id()}) {
    grpc::ClientContext ctx;
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    req.set_verbose(true);
    cri::ImageStatusResponse status;
    ASSERT_TRUE(images->ImageStatus(&ctx, req, &status).ok()) << ref;
    EXPECT_EQ(status.image().id(), image.id()) << ref;
    ASSERT_TRUE(status.info().contains("info"));
  }
  {
    grpc::ClientContext ctx;
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image("busybox:other");
    cri::ImageStatusResponse status;
    ASSERT_TRUE(images->ImageStatus(&ctx, req, &status).ok());
    EXPECT_FALSE(status.has_image());
  }
  {
    grpc::ClientContext ctx;
    cri::ImageFsInfoResponse fs;
    ASSERT_TRUE(images->ImageFsInfo(&ctx, cri::ImageFsInfoRequest(), &fs).ok());
    ASSERT_EQ(fs.image_filesystems_size(), 1);
    EXPECT_EQ(fs.image_filesystems(0).fs_id().mountpoint(),
              d.root() + "/io.containerd.snapshotter.v1.overlayfs");
    EXPECT_GT(fs.image_filesystems(0).inodes_used().value(), 0u);
  }

  {
    grpc::ClientContext ctx;
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(image.id());
    cri::RemoveImageResponse resp;
    ASSERT_TRUE(images->RemoveImage(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(d.ctr({"images", "ls", "-q"}, "k8s.io").out, "");
  {
    // Removing what is gone is not an error.
    grpc::ClientContext ctx;
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image("busybox");
    cri::RemoveImageResponse resp;
    EXPECT_TRUE(images->RemoveImage(&ctx, req, &resp).ok());
  }
  cri::ListImagesResponse after;
  grpc::ClientContext ctx;
  ASSERT_TRUE(images->ListImages(&ctx, cri::ListImagesRequest(), &after).ok());
  EXPECT_EQ(after.images_size(), 0);
}

TEST(Cri, PullImageFetchesThroughAHostsTomlMirrorUnpacksAndRecordsTheImage) {
  TempDir work;
  Registry registry(work.path() / "registry");
  auto pushed = registry.push(busybox_tar(work.path()), "library/busybox:1.36");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.all();
  // docker.io is served by the loopback registry: nothing leaves the machine.
  std::filesystem::create_directories(work.path() / "certs.d" / "docker.io");
  std::ofstream(work.path() / "certs.d" / "docker.io" / "hosts.toml")
      << "server = \"http://" << registry.host() << "\"\n"
      << "[host.\"http://" << registry.host() << "\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
  Daemon d(DaemonOptions{
      .config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"" +
                (work.path() / "certs.d").string() + "\"\n"});
  auto images = cri::ImageService::NewStub(d.channel());

  cri::PullImageResponse pulled;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    cri::PullImageRequest req;
    req.mutable_image()->set_image("busybox:1.36");
    auto status = images->PullImage(&ctx, req, &pulled);
    ASSERT_TRUE(status.ok()) << status.error_message() << d.log();
  }
  EXPECT_TRUE(pulled.image_ref().starts_with("sha256:")) << pulled.image_ref();

  cri::ImageStatusResponse status;
  {
    grpc::ClientContext ctx;
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image("busybox:1.36");
    ASSERT_TRUE(images->ImageStatus(&ctx, req, &status).ok());
  }
  EXPECT_EQ(status.image().id(), pulled.image_ref());
  ASSERT_EQ(status.image().repo_tags_size(), 1);
  EXPECT_EQ(status.image().repo_tags(0), "docker.io/library/busybox:1.36");
  ASSERT_EQ(status.image().repo_digests_size(), 1);
  EXPECT_TRUE(status.image().repo_digests(0).starts_with("docker.io/library/busybox@sha256:"));

  // containerd's three records, and the layers unpacked into overlayfs.
  const std::string records = d.ctr({"images", "ls", "-q"}, "k8s.io").out;
  EXPECT_NE(records.find("docker.io/library/busybox:1.36\n"), std::string::npos) << records;
  EXPECT_NE(records.find(pulled.image_ref()), std::string::npos) << records;
  EXPECT_NE(d.ctr({"snapshots", "ls"}, "k8s.io").out.find("Committed"), std::string::npos);
  EXPECT_NE(d.ctr({"images", "check"}, "k8s.io").out.find("complete"), std::string::npos);

  // A name no registry serves is an error that says what was pulled.
  grpc::ClientContext ctx;
  cri::PullImageRequest missing;
  missing.mutable_image()->set_image("busybox:no-such-tag");
  cri::PullImageResponse none;
  auto failed = images->PullImage(&ctx, missing, &none);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::NOT_FOUND) << failed.error_message();
  EXPECT_NE(failed.error_message().find("docker.io/library/busybox:no-such-tag"), std::string::npos)
      << failed.error_message();
}

grpc::Status pull_image(cri::ImageService::Stub& images, const std::string& ref,
                        const cri::AuthConfig& auth = {}) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  cri::PullImageRequest req;
  req.mutable_image()->set_image(ref);
  *req.mutable_auth() = auth;
  cri::PullImageResponse resp;
  return images.PullImage(&ctx, req, &resp);
}

// A registry behind TLS from a CA the test makes and htpasswd Basic auth,
// configured both ways a node may have it: a hosts.toml with the CA and the
// kubelet's credentials in the request, or the older registry.configs with
// both in the daemon's config.
TEST(Cri, PullImageFromATlsRegistryWithBasicAuth) {
  TempDir work;
  const TestCa ca = make_test_ca(work.path() / "ca");
  Registry registry(
      work.path() / "registry",
      RegistryOptions{
          .tls_cert = ca.server_cert, .tls_key = ca.server_key, .username = "puller", .password = "s3cret"});
  auto pushed = registry.push(busybox_tar(work.path()), "team/busybox:1");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.all();
  const std::string ref = registry.host() + "/team/busybox:1";
  cri::AuthConfig good;
  good.set_username("puller");
  good.set_password("s3cret");

  {
    const auto dir = work.path() / "certs.d" / registry.host();
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "hosts.toml") << "server = \"https://" << registry.host() << "\"\n"
                                      << "[host.\"https://" << registry.host() << "\"]\n"
                                      << "  ca = \"" << ca.ca_cert.string() << "\"\n";
    // Another name for the same registry, without the CA.
    const std::string unverified_host = "unverified.test:" + std::to_string(registry.port());
    std::filesystem::create_directories(work.path() / "certs.d" / unverified_host);
    std::ofstream(work.path() / "certs.d" / unverified_host / "hosts.toml")
        << "server = \"https://" << registry.host() << "\"\n";
    Daemon d(DaemonOptions{
        .config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"" +
                  (work.path() / "certs.d").string() + "\"\n"});
    auto images = cri::ImageService::NewStub(d.channel());

    auto anonymous = pull_image(*images, ref);
    EXPECT_FALSE(anonymous.ok());
    EXPECT_NE(anonymous.error_message().find("requires Basic authentication"), std::string::npos)
        << anonymous.error_message();
    cri::AuthConfig wrong = good;
    wrong.set_password("wrong");
    EXPECT_FALSE(pull_image(*images, ref, wrong).ok());
    EXPECT_EQ(d.ctr({"images", "ls", "-q"}, "k8s.io").out, "");

    // Without the CA, the TLS check refuses it.
    auto refused = pull_image(*images, unverified_host + "/team/busybox:1", good);
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.error_message().find("certificate"), std::string::npos) << refused.error_message();

    auto pulled = pull_image(*images, ref, good);
    ASSERT_TRUE(pulled.ok()) << pulled.error_message() << d.log();
    EXPECT_NE(d.ctr({"images", "ls", "-q"}, "k8s.io").out.find(ref), std::string::npos);

    // The `auth` form: base64 of "user:password".
    ASSERT_EQ(d.ctr({"images", "rm", ref}, "k8s.io").exit_code, 0);
    cri::AuthConfig encoded;
    encoded.set_auth("cHVsbGVyOnMzY3JldA==");
    auto pulled_again = pull_image(*images, ref, encoded);
    EXPECT_TRUE(pulled_again.ok()) << pulled_again.error_message();
  }
  {
    // A loopback registry is plain HTTP by default: the mirror says https.
    const std::string section = "[plugins.\"io.containerd.grpc.v1.cri\".registry.";
    Daemon d(DaemonOptions{
        .config = "version = 2\n" + section + "mirrors.\"" + registry.host() + "\"]\nendpoint = [\"https://" +
                  registry.host() + "\"]\n" + section + "configs.\"" + registry.host() +
                  "\".auth]\nusername = \"puller\"\npassword = \"s3cret\"\n" + section + "configs.\"" +
                  registry.host() + "\".tls]\nca_file = \"" + ca.ca_cert.string() + "\"\n"});
    auto images = cri::ImageService::NewStub(d.channel());
    auto pulled = pull_image(*images, ref);
    ASSERT_TRUE(pulled.ok()) << pulled.error_message() << d.log();
    EXPECT_NE(d.ctr({"snapshots", "ls"}, "k8s.io").out.find("Committed"), std::string::npos);
  }
}

TEST(Cri, ConfigDefaultPrintsContainerdsCriSection) {
  auto printed = run({ctrd_binary(), "config", "default"});
  ASSERT_EQ(printed.exit_code, 0) << printed.all();
  for (const char* line :
       {"[plugins.\"io.containerd.grpc.v1.cri\"]", "sandbox_image = \"registry.k8s.io/pause:3.6\"",
        "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]",
        "runtime_type = \"io.containerd.runc.v2\"", "max_conf_num = 1"}) {
    EXPECT_NE(printed.out.find(line), std::string::npos) << line << "\n" << printed.out;
  }
}

TEST(Cri, AWrongTypeInTheCriSectionFailsThePluginNamingTheKey) {
  Daemon d(DaemonOptions{
      .config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\nmax_conf_num = \"one\"\n",
      .wait_ready = false});
  // A plugin whose config does not decode fails to load; the daemon serves
  // on and says which key was wrong.
  ASSERT_TRUE(d.wait_ready()) << d.log();
  auto plugins = d.ctr({"plugins", "ls", "-d", "id==cri"});
  EXPECT_NE(plugins.all().find("cni.max_conf_num"), std::string::npos) << plugins.all() << d.log();
}

}  // namespace
}  // namespace ctrd::testing
