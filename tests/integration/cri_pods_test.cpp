// CRI pods and containers on a real daemon: sandboxes on a CNI bridge the
// test names (a private subnet, no gateway, no default route), containers
// from an image imported into k8s.io, run by runc through the shim, their
// logs, ExecSync, stop and removal — and nothing left behind.
#include <cri/runtime/v1/api.grpc.pb.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness.h"

namespace ctrd::testing {
namespace {

namespace cri = ::runtime::v1;

constexpr const char* kBridge = "ctrdpod0";
constexpr const char* kSubnet = "10.238.0.";

// Deletes the bridge the CNI plugin made for the test's network.
struct BridgeGuard {
  ~BridgeGuard() {
    try {
      (void)run({"/usr/sbin/ip", "link", "del", kBridge});
    } catch (const std::exception&) {  // a destructor must not throw; the bridge is only left behind
    }
  }
};

std::string pods_config(const std::string& dir, const std::string& sandbox_image) {
  std::filesystem::create_directories(dir + "/net.d");
  std::ofstream(dir + "/net.d/10-pods.conflist")
      << R"({"cniVersion":"0.4.0","name":"pods","plugins":[{"type":"bridge","bridge":")" << kBridge
      << R"(","ipam":{"type":"host-local","dataDir":")" << dir << R"(/ipam","ranges":[[{"subnet":")"
      << kSubnet << R"(0/24"}]]}},)"
      << R"({"type":"portmap","capabilities":{"portMappings":true}}]})";
  return "version = 2\n"
         "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
         "sandbox_image = \"" +
         sandbox_image +
         "\"\n"
         "restrict_oom_score_adj = true\n"
         "netns_mounts_under_state_dir = true\n"
         "[plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
         "bin_dir = \"/usr/lib/cni\"\n"
         "conf_dir = \"" +
         dir + "/net.d\"\n";
}

std::chrono::system_clock::time_point in(std::chrono::seconds s) {
  return std::chrono::system_clock::now() + s;
}

class Pods {
 public:
  explicit Pods(Daemon& d)
      : runtime_(cri::RuntimeService::NewStub(d.channel())),
        images_(cri::ImageService::NewStub(d.channel())) {}

  grpc::Status run(const cri::PodSandboxConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    cri::RunPodSandboxResponse resp;
    auto status = runtime_->RunPodSandbox(&ctx, req, &resp);
    *id = resp.pod_sandbox_id();
    return status;
  }
  cri::PodSandboxStatus sandbox_status(const std::string& id) {
    grpc::ClientContext ctx;
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    cri::PodSandboxStatusResponse resp;
    EXPECT_TRUE(runtime_->PodSandboxStatus(&ctx, req, &resp).ok());
    return resp.status();
  }
  grpc::Status create(const std::string& pod, const cri::PodSandboxConfig& pod_config,
                      const cri::ContainerConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_config() = config;
    *req.mutable_sandbox_config() = pod_config;
    cri::CreateContainerResponse resp;
    auto status = runtime_->CreateContainer(&ctx, req, &resp);
    *id = resp.container_id();
    return status;
  }
  grpc::Status start(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::StartContainerRequest req;
    req.set_container_id(id);
    cri::StartContainerResponse resp;
    return runtime_->StartContainer(&ctx, req, &resp);
  }
  grpc::Status stop(const std::string& id, int64_t timeout) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    cri::StopContainerResponse resp;
    return runtime_->StopContainer(&ctx, req, &resp);
  }
  cri::ContainerStatus status(const std::string& id) {
    grpc::ClientContext ctx;
    cri::ContainerStatusRequest req;
    req.set_container_id(id);
    cri::ContainerStatusResponse resp;
    EXPECT_TRUE(runtime_->ContainerStatus(&ctx, req, &resp).ok());
    return resp.status();
  }
  // The status once the container has exited, within a bound.
  cri::ContainerStatus exited(const std::string& id) {
    const auto deadline = in(std::chrono::seconds(30));
    cri::ContainerStatus s = status(id);
    while (s.state() != cri::CONTAINER_EXITED && std::chrono::system_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      s = status(id);
    }
    return s;
  }
  grpc::Status exec(const std::string& id, const std::vector<std::string>& cmd, int64_t timeout,
                    cri::ExecSyncResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    for (const auto& c : cmd) req.add_cmd(c);
    req.set_timeout(timeout);
    return runtime_->ExecSync(&ctx, req, resp);
  }
  grpc::Status remove_container(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::RemoveContainerRequest req;
    req.set_container_id(id);
    cri::RemoveContainerResponse resp;
    return runtime_->RemoveContainer(&ctx, req, &resp);
  }
  grpc::Status stop_pod(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse resp;
    return runtime_->StopPodSandbox(&ctx, req, &resp);
  }
  grpc::Status remove_pod(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(60)));
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse resp;
    return runtime_->RemovePodSandbox(&ctx, req, &resp);
  }
  std::vector<cri::PodSandbox> pods(const cri::PodSandboxFilter& filter = {}) {
    grpc::ClientContext ctx;
    cri::ListPodSandboxRequest req;
    *req.mutable_filter() = filter;
    cri::ListPodSandboxResponse resp;
    EXPECT_TRUE(runtime_->ListPodSandbox(&ctx, req, &resp).ok());
    return {resp.items().begin(), resp.items().end()};
  }
  std::vector<cri::Container> containers(const cri::ContainerFilter& filter = {}) {
    grpc::ClientContext ctx;
    cri::ListContainersRequest req;
    *req.mutable_filter() = filter;
    cri::ListContainersResponse resp;
    EXPECT_TRUE(runtime_->ListContainers(&ctx, req, &resp).ok());
    return {resp.containers().begin(), resp.containers().end()};
  }

 private:
  std::unique_ptr<cri::RuntimeService::Stub> runtime_;
  std::unique_ptr<cri::ImageService::Stub> images_;
};

cri::PodSandboxConfig pod(const std::string& name, const std::string& log_dir) {
  cri::PodSandboxConfig config;
  config.mutable_metadata()->set_name(name);
  config.mutable_metadata()->set_namespace_("default");
  config.mutable_metadata()->set_uid("uid-" + name);
  config.set_hostname(name + "-host");
  config.set_log_directory(log_dir);
  (*config.mutable_labels())["app"] = name;
  config.mutable_dns_config()->add_servers("10.238.0.53");
  config.mutable_dns_config()->add_searches("pods.test");
  return config;
}

cri::ContainerConfig container(const std::string& name, const std::vector<std::string>& command) {
  cri::ContainerConfig config;
  config.mutable_metadata()->set_name(name);
  config.mutable_image()->set_image("busybox");
  for (const auto& c : command) config.add_command(c);
  config.set_log_path(name + ".log");
  (*config.mutable_labels())["role"] = name;
  return config;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Mounts whose mount point is under `dir`.
int mounts_under(const std::filesystem::path& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int count = 0;
  while (std::getline(in, line))
    if (line.find(" " + dir.string() + "/") != std::string::npos) ++count;
  return count;
}

TEST(CriPods, APodRunsContainersOnItsNetworkLogsThemAndLeavesNothingBehind) {
  BridgeGuard bridge;
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  Pods pods(d);
  const std::string logs = work.sub("logs");
  const cri::PodSandboxConfig web = pod("web", logs);

  std::string pod_id;
  ASSERT_TRUE(pods.run(web, &pod_id).ok()) << d.log();
  cri::PodSandboxStatus sandbox = pods.sandbox_status(pod_id);
  EXPECT_EQ(sandbox.state(), cri::SANDBOX_READY);
  EXPECT_TRUE(sandbox.network().ip().starts_with(kSubnet)) << sandbox.network().ip();
  EXPECT_EQ(sandbox.labels().at("app"), "web");
  // The name is the pod's: a second sandbox with the same metadata is refused.
  std::string again;
  EXPECT_EQ(pods.run(web, &again).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // A container that traps SIGTERM: StopContainer's signal ends it cleanly.
  std::string server;
  ASSERT_TRUE(pods.create(pod_id, web,
                          container("server", {"sh", "-c",
                                               "trap 'echo bye; exit 0' TERM; echo hello; echo oops >&2; "
                                               "while true; do sleep 0.1; done"}),
                          &server)
                  .ok())
      << d.log();
  EXPECT_EQ(pods.status(server).state(), cri::CONTAINER_CREATED);
  ASSERT_TRUE(pods.start(server).ok()) << d.log();
  EXPECT_EQ(pods.status(server).state(), cri::CONTAINER_RUNNING);

  cri::ExecSyncResponse out;
  ASSERT_TRUE(
      pods.exec(server, {"sh", "-c", "cat /etc/hostname /etc/resolv.conf; ip -4 addr show eth0"}, 10, &out)
          .ok());
  EXPECT_EQ(out.exit_code(), 0);
  EXPECT_NE(out.stdout().find("web-host\n"), std::string::npos) << out.stdout();
  EXPECT_NE(out.stdout().find("nameserver 10.238.0.53"), std::string::npos) << out.stdout();
  EXPECT_NE(out.stdout().find("search pods.test"), std::string::npos) << out.stdout();
  EXPECT_NE(out.stdout().find(sandbox.network().ip() + "/24"), std::string::npos) << out.stdout();
  ASSERT_TRUE(pods.exec(server, {"sh", "-c", "echo to-err >&2; exit 3"}, 10, &out).ok());
  EXPECT_EQ(out.exit_code(), 3);
  EXPECT_EQ(out.stderr(), "to-err\n");
  // A command that outlives its timeout is killed.
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(pods.exec(server, {"sleep", "61"}, 1, &out).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(20));
  ASSERT_TRUE(pods.exec(server,
                        {"sh", "-c",
                         "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep -c '^sleep "
                         "61 $' || true"},
                        10, &out)
                  .ok());
  EXPECT_EQ(out.stdout(), "0\n") << "the timed-out sleep is still running";

  {
    auto runtime = cri::RuntimeService::NewStub(d.channel());
    grpc::ClientContext ctx;
    cri::ContainerStatsRequest req;
    req.set_container_id(server);
    cri::ContainerStatsResponse resp;
    ASSERT_TRUE(runtime->ContainerStats(&ctx, req, &resp).ok()) << d.log();
    EXPECT_EQ(resp.stats().attributes().id(), server);
    EXPECT_GT(resp.stats().cpu().usage_core_nano_seconds().value(), 0u);
    EXPECT_GT(resp.stats().memory().working_set_bytes().value(), 0u);
    EXPECT_FALSE(resp.stats().writable_layer().fs_id().mountpoint().empty());
    grpc::ClientContext pod_ctx;
    cri::PodSandboxStatsRequest pod_req;
    pod_req.set_pod_sandbox_id(pod_id);
    cri::PodSandboxStatsResponse pod_resp;
    ASSERT_TRUE(runtime->PodSandboxStats(&pod_ctx, pod_req, &pod_resp).ok()) << d.log();
    EXPECT_EQ(pod_resp.stats().linux().containers_size(), 1);
    EXPECT_GE(pod_resp.stats().linux().cpu().usage_core_nano_seconds().value(),
              resp.stats().cpu().usage_core_nano_seconds().value());
    ASSERT_NE(pod_resp.stats().linux().network().interfaces_size(), 0);
    EXPECT_EQ(pod_resp.stats().linux().network().default_interface().name(), "eth0");
  }

  ASSERT_TRUE(pods.stop(server, 10).ok()) << d.log();
  cri::ContainerStatus stopped = pods.status(server);
  EXPECT_EQ(stopped.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(stopped.exit_code(), 0);
  EXPECT_EQ(stopped.reason(), "Completed");
  EXPECT_GE(stopped.finished_at(), stopped.started_at());
  const std::string log = read_file(logs + "/server.log");
  EXPECT_NE(log.find(" stdout F hello\n"), std::string::npos) << log;
  EXPECT_NE(log.find(" stderr F oops\n"), std::string::npos) << log;
  EXPECT_NE(log.find(" stdout F bye\n"), std::string::npos) << log;

  // A container that fails on its own.
  std::string failing;
  ASSERT_TRUE(pods.create(pod_id, web, container("failing", {"sh", "-c", "exit 2"}), &failing).ok());
  ASSERT_TRUE(pods.start(failing).ok()) << d.log();
  cri::ContainerStatus failed = pods.exited(failing);
  EXPECT_EQ(failed.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(failed.exit_code(), 2);
  EXPECT_EQ(failed.reason(), "Error");

  cri::ContainerFilter by_pod;
  by_pod.set_pod_sandbox_id(pod_id.substr(0, 12));
  EXPECT_EQ(pods.containers(by_pod).size(), 2u);
  cri::ContainerFilter by_label;
  (*by_label.mutable_label_selector())["role"] = "failing";
  ASSERT_EQ(pods.containers(by_label).size(), 1u);
  EXPECT_EQ(pods.containers(by_label)[0].id(), failing);

  ASSERT_TRUE(pods.remove_container(server).ok()) << d.log();
  EXPECT_EQ(pods.containers(by_pod).size(), 1u);
  ASSERT_TRUE(pods.stop_pod(pod_id).ok()) << d.log();
  EXPECT_EQ(pods.sandbox_status(pod_id).state(), cri::SANDBOX_NOTREADY);
  ASSERT_TRUE(pods.remove_pod(pod_id).ok()) << d.log();
  EXPECT_TRUE(pods.pods().empty());
  EXPECT_TRUE(pods.containers().empty());
  // Removing again is not an error, as for the kubelet's retries.
  EXPECT_TRUE(pods.remove_pod(pod_id).ok());

  EXPECT_EQ(mounts_under(d.dir()), 0) << read_file("/proc/self/mountinfo");
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/io.containerd.grpc.v1.cri/netns"));
  EXPECT_EQ(d.ctr({"containers", "ls", "-q"}, "k8s.io").out, "");
  EXPECT_EQ(d.ctr({"tasks", "ls", "-q"}, "k8s.io").out, "");
  // The log outlives the container, for the kubelet to rotate away.
  EXPECT_TRUE(std::filesystem::exists(logs + "/server.log"));
}

TEST(CriPods, AHostNetworkPodSharesTheNodesNetworkAndHostname) {
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  Pods pods(d);
  cri::PodSandboxConfig config = pod("hostnet", work.sub("logs"));
  config.clear_hostname();
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
  std::string pod_id;
  ASSERT_TRUE(pods.run(config, &pod_id).ok()) << d.log();
  EXPECT_EQ(pods.sandbox_status(pod_id).network().ip(), "");
  std::string id;
  ASSERT_TRUE(pods.create(pod_id, config, container("c", {"sleep", "60"}), &id).ok()) << d.log();
  ASSERT_TRUE(pods.start(id).ok()) << d.log();
  cri::ExecSyncResponse out;
  ASSERT_TRUE(pods.exec(id, {"sh", "-c", "readlink /proc/1/ns/net; hostname"}, 10, &out).ok());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_NE(out.stdout().find(std::string(host) + "\n"), std::string::npos) << out.stdout();
  EXPECT_EQ(out.stdout().substr(0, out.stdout().find('\n')),
            std::filesystem::read_symlink("/proc/self/ns/net").string());
  // StopPodSandbox kills the pod's containers first.
  ASSERT_TRUE(pods.stop_pod(pod_id).ok()) << d.log();
  EXPECT_EQ(pods.status(id).state(), cri::CONTAINER_EXITED);
  ASSERT_TRUE(pods.remove_pod(pod_id).ok()) << d.log();
  EXPECT_TRUE(pods.containers().empty());
  EXPECT_EQ(mounts_under(d.dir()), 0);
}

TEST(CriPods, ARestartedDaemonFindsItsPodsAndContainersAndKeepsLogging) {
  BridgeGuard bridge;
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  const cri::PodSandboxConfig config = pod("survivor", work.sub("logs"));
  std::string pod_id, running, exited, created;
  {
    Pods pods(d);
    ASSERT_TRUE(pods.run(config, &pod_id).ok()) << d.log();
    ASSERT_TRUE(pods.create(pod_id, config, container("running", {"sleep", "600"}), &running).ok())
        << d.log();
    ASSERT_TRUE(pods.start(running).ok()) << d.log();
    ASSERT_TRUE(pods.create(pod_id, config, container("exited", {"sh", "-c", "exit 7"}), &exited).ok());
    ASSERT_TRUE(pods.start(exited).ok()) << d.log();
    ASSERT_EQ(pods.exited(exited).exit_code(), 7);
    ASSERT_TRUE(pods.create(pod_id, config, container("created", {"true"}), &created).ok());
  }
  ASSERT_EQ(d.stop(), 0) << d.log();
  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();
  Pods pods(d);
  EXPECT_EQ(pods.sandbox_status(pod_id).state(), cri::SANDBOX_READY);
  EXPECT_TRUE(pods.sandbox_status(pod_id).network().ip().starts_with(kSubnet));
  EXPECT_EQ(pods.status(running).state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(pods.status(exited).state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(pods.status(exited).exit_code(), 7);
  EXPECT_EQ(pods.status(created).state(), cri::CONTAINER_CREATED);
  // The names stay taken, and the running container's output still reaches its log.
  std::string again;
  EXPECT_EQ(pods.run(config, &again).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  cri::ExecSyncResponse out;
  // Written to the output of the container's own process (the pod's PID 1 is its pause process).
  ASSERT_TRUE(
      pods.exec(running,
                {"sh", "-c",
                 "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = sleep ] && echo after-restart > $p/fd/1; "
                 "done; true"},
                10, &out)
          .ok())
      << d.log();
  const std::string log_path = work.sub("logs") + "/running.log";
  const auto deadline = in(std::chrono::seconds(10));
  while (read_file(log_path).find(" stdout F after-restart\n") == std::string::npos &&
         std::chrono::system_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_NE(read_file(log_path).find(" stdout F after-restart\n"), std::string::npos) << read_file(log_path);
  ASSERT_TRUE(pods.remove_pod(pod_id).ok()) << d.log();
  EXPECT_TRUE(pods.containers().empty());
  EXPECT_EQ(mounts_under(d.dir()), 0);
}

TEST(CriPods, GetContainerEventsStreamsAContainersLifeWithItsPod) {
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  Pods pods(d);
  cri::PodSandboxConfig config = pod("watched", work.sub("logs"));
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
  std::string pod_id;
  ASSERT_TRUE(pods.run(config, &pod_id).ok()) << d.log();

  auto runtime = cri::RuntimeService::NewStub(d.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(in(std::chrono::seconds(60)));
  auto stream = runtime->GetContainerEvents(&ctx, cri::GetEventsRequest());
  // The server sends its metadata once it has subscribed the call.
  stream->WaitForInitialMetadata();
  std::string id;
  ASSERT_TRUE(pods.create(pod_id, config, container("c", {"sh", "-c", "exit 0"}), &id).ok()) << d.log();
  ASSERT_TRUE(pods.start(id).ok());
  ASSERT_EQ(pods.exited(id).state(), cri::CONTAINER_EXITED);
  ASSERT_TRUE(pods.remove_container(id).ok());

  const std::vector<cri::ContainerEventType> expected{
      cri::CONTAINER_CREATED_EVENT, cri::CONTAINER_STARTED_EVENT, cri::CONTAINER_STOPPED_EVENT,
      cri::CONTAINER_DELETED_EVENT};
  std::vector<cri::ContainerEventType> seen;
  cri::ContainerEventResponse event;
  while (seen.size() < expected.size() && stream->Read(&event)) {
    if (event.container_id() != id) continue;
    seen.push_back(event.container_event_type());
    EXPECT_EQ(event.pod_sandbox_status().id(), pod_id);
    EXPECT_EQ(event.pod_sandbox_status().state(), cri::SANDBOX_READY);
    ASSERT_EQ(event.containers_statuses_size(), 1);
    EXPECT_GT(event.created_at(), 0);
    if (event.container_event_type() == cri::CONTAINER_STOPPED_EVENT) {
      EXPECT_EQ(event.containers_statuses(0).state(), cri::CONTAINER_EXITED);
    }
  }
  EXPECT_EQ(seen, expected);
  ctx.TryCancel();
  ASSERT_TRUE(pods.remove_pod(pod_id).ok());
}

TEST(CriPods, AContainerTheKernelKillsForMemoryExitsOOMKilled) {
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  Pods pods(d);
  cri::PodSandboxConfig config = pod("hungry", work.sub("logs"));
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
  std::string pod_id;
  ASSERT_TRUE(pods.run(config, &pod_id).ok()) << d.log();
  // tail keeps all of /dev/zero in memory, waiting for a newline that never comes.
  cri::ContainerConfig hungry = container("hungry", {"tail", "/dev/zero"});
  hungry.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
  std::string id;
  ASSERT_TRUE(pods.create(pod_id, config, hungry, &id).ok()) << d.log();
  ASSERT_TRUE(pods.start(id).ok()) << d.log();
  cri::ContainerStatus status = pods.exited(id);
  EXPECT_EQ(status.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(status.exit_code(), 137);
  EXPECT_EQ(status.reason(), "OOMKilled");
  ASSERT_TRUE(pods.remove_pod(pod_id).ok()) << d.log();
}

// A daemon killed while RunPodSandbox runs CNI (the pause task already
// running): the next start tears the half-made pod down — task, record,
// address, namespace and /dev/shm, files.
TEST(CriPods, ARunPodSandboxCutShortByKill9LeavesNothingAfterTheNextStart) {
  BridgeGuard bridge;
  TempDir work;
  std::string config = pods_config(work.str(), "");
  // Plugins from Debian's directory, plus one that stops in ADD until killed.
  const std::string bin = work.sub("cni-bin");
  std::filesystem::create_directories(bin);
  for (const auto& plugin : std::filesystem::directory_iterator("/usr/lib/cni"))
    std::filesystem::create_symlink(plugin.path(), bin + "/" + plugin.path().filename().string());
  const std::string marker = work.sub("stuck-pid");
  {
    std::ofstream script(bin + "/stuck");
    script << "#!/bin/sh\n"
              "if [ \"$CNI_COMMAND\" = ADD ]; then echo $$ > "
           << marker << ".tmp; mv " << marker << ".tmp " << marker
           << "; exec sleep 120; fi\n"
              "echo '{\"cniVersion\":\"0.4.0\"}'\n";
  }
  std::filesystem::permissions(bin + "/stuck", std::filesystem::perms(0755));
  std::ofstream(work.sub("net.d/10-pods.conflist"))
      << R"({"cniVersion":"0.4.0","name":"pods","plugins":[{"type":"bridge","bridge":")" << kBridge
      << R"(","ipam":{"type":"host-local","dataDir":")" << work.str() << R"(/ipam","ranges":[[{"subnet":")"
      << kSubnet << R"(0/24"}]]}},{"type":"stuck"}]})";
  config.replace(config.find("/usr/lib/cni"), std::string("/usr/lib/cni").size(), bin);

  Daemon d(DaemonOptions{.config = config});
  std::thread run([&] {
    Pods pods(d);
    std::string id;
    (void)pods.run(pod("cut", work.sub("logs")), &id);  // fails: the daemon dies under it
  });
  const auto deadline = in(std::chrono::seconds(30));
  while (!std::filesystem::exists(marker) && std::chrono::system_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(std::filesystem::exists(marker)) << d.log();
  // The sandbox's task starts while CNI runs: cut short with both under way.
  auto tasks = [&] { return d.ctr({"tasks", "ls"}, "k8s.io").out; };
  while (tasks().find("RUNNING") == std::string::npos && std::chrono::system_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_NE(tasks().find("RUNNING"), std::string::npos) << d.log();
  const pid_t stuck = std::stoi(read_file(marker));
  d.kill9();
  ::kill(stuck, SIGKILL);
  run.join();
  // The bridge plugin gave the pod an address and a namespace is mounted.
  const std::string ipam = work.str() + "/ipam/pods";
  auto allocations = [&] {
    int n = 0;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(ipam, ec))
      if (f.path().filename().string().starts_with(kSubnet)) ++n;
    return n;
  };
  ASSERT_EQ(allocations(), 1);
  EXPECT_EQ(mounts_under(d.dir()), 2);  // the namespace and /dev/shm

  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_EQ(allocations(), 0) << d.log();
  EXPECT_EQ(mounts_under(d.dir()), 0) << read_file("/proc/self/mountinfo");
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/io.containerd.grpc.v1.cri/netns"));
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/io.containerd.grpc.v1.cri/sandboxes"));
  EXPECT_TRUE(Pods(d).pods().empty());
  EXPECT_EQ(d.ctr({"tasks", "ls", "-q"}, "k8s.io").out, "");
  EXPECT_EQ(d.ctr({"containers", "ls", "-q"}, "k8s.io").out, "");
}

#ifndef CTRD_STREAMCLIENT
#define CTRD_STREAMCLIENT ""
#endif

// The kubelet's side of the streaming protocols, from Debian's spdystream
// (tests/integration/streaming/go): `args`, then the mode (exec, attach,
// portforward) and the URL; `input` on stdin.
RunResult streamclient(const std::string& mode, const std::vector<std::string>& args, const std::string& url,
                       const std::string& input) {
  TempDir dir;
  std::ofstream(dir.sub("stdin")) << input;
  std::vector<std::string> argv{CTRD_STREAMCLIENT};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(mode);
  argv.push_back(url);
  return run(argv, std::chrono::seconds(60), dir.sub("stdin"));
}

// Exec, Attach and PortForward through the streaming server, with the
// kubelet's client: output, stdin to its end, exit codes, a tty, a port in
// the pod's network namespace; tokens that are used or unknown are refused.
TEST(CriPods, ExecAttachAndPortForwardStreamThroughTheStreamingServer) {
  if (std::string(CTRD_STREAMCLIENT).empty()) GTEST_SKIP() << "go is not installed: no streaming client";
  BridgeGuard bridge;
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}, "k8s.io").exit_code, 0) << d.log();
  Pods pods(d);
  const cri::PodSandboxConfig config = pod("streams", work.sub("logs"));
  std::string pod_id, server_id, shell_id;
  ASSERT_TRUE(pods.run(config, &pod_id).ok()) << d.log();
  ASSERT_TRUE(pods.create(pod_id, config, container("echo-server", {"nc", "-ll", "-p", "8080", "-e", "cat"}),
                          &server_id)
                  .ok())
      << d.log();
  ASSERT_TRUE(pods.start(server_id).ok()) << d.log();
  cri::ContainerConfig shell = container("shell", {"sh"});
  shell.set_stdin(true);
  shell.set_stdin_once(true);
  ASSERT_TRUE(pods.create(pod_id, config, shell, &shell_id).ok()) << d.log();
  ASSERT_TRUE(pods.start(shell_id).ok()) << d.log();
  auto runtime = cri::RuntimeService::NewStub(d.channel());

  auto exec_url = [&](const std::vector<std::string>& cmd, bool tty, bool in) {
    grpc::ClientContext ctx;
    cri::ExecRequest req;
    req.set_container_id(server_id);
    for (const auto& c : cmd) req.add_cmd(c);
    req.set_tty(tty);
    req.set_stdin(in);
    req.set_stdout(true);
    req.set_stderr(!tty);
    cri::ExecResponse resp;
    auto status = runtime->Exec(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp.url();
  };

  // Output on both streams, and the exit code through v4's Status.
  const std::string url = exec_url({"sh", "-c", "echo out; echo err >&2; exit 3"}, false, false);
  EXPECT_TRUE(url.starts_with("http://127.0.0.1:")) << url;
  auto failed = streamclient("exec", {}, url, "");
  EXPECT_EQ(failed.exit_code, 3) << failed.err;
  EXPECT_EQ(failed.out, "out\n");
  EXPECT_NE(failed.err.find("err\n"), std::string::npos) << failed.err;
  EXPECT_NE(failed.err.find("protocol: v4.channel.k8s.io"), std::string::npos) << failed.err;
  // A token is good once.
  auto reused = streamclient("exec", {}, url, "");
  EXPECT_EQ(reused.exit_code, 3) << "upgrade refused: " << reused.err;
  EXPECT_NE(reused.err.find("404"), std::string::npos) << reused.err;

  // Stdin reaches the process, and its end ends the process's input.
  auto echoed =
      streamclient("exec", {"-stdin"}, exec_url({"sh", "-c", "tr a-z A-Z"}, false, true), "hello stdin\n");
  EXPECT_EQ(echoed.exit_code, 0) << echoed.err;
  EXPECT_EQ(echoed.out, "HELLO STDIN\n");
  // With a tty: one output stream, the terminal size from the resize stream.
  auto tty = streamclient("exec", {"-tty", "-stdin", "-resize", "91x37"},
                          exec_url({"sh", "-c", "read line; stty size; echo got $line"}, true, true), "x\n");
  EXPECT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_NE(tty.out.find("37 91"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("got x"), std::string::npos) << tty.out;
  // An older protocol: no exit code, an error message instead.
  auto v2 = streamclient("exec", {"-protocols", "v2.channel.k8s.io"},
                         exec_url({"sh", "-c", "exit 5"}, false, false), "");
  EXPECT_NE(v2.err.find("protocol: v2.channel.k8s.io"), std::string::npos) << v2.err;
  EXPECT_EQ(v2.exit_code, 2) << v2.err;
  EXPECT_NE(v2.err.find("non-zero exit code"), std::string::npos) << v2.err;

  // Attach joins the running shell: stdin in, its output back; stdin_once
  // ends the shell with the attacher's stdin.
  {
    grpc::ClientContext ctx;
    cri::AttachRequest req;
    req.set_container_id(shell_id);
    req.set_stdin(true);
    req.set_stdout(true);
    req.set_stderr(true);
    cri::AttachResponse resp;
    ASSERT_TRUE(runtime->Attach(&ctx, req, &resp).ok());
    auto attached = streamclient("attach", {"-stdin"}, resp.url(), "echo hello from attach\n");
    EXPECT_EQ(attached.exit_code, 0) << attached.err;
    EXPECT_EQ(attached.out, "hello from attach\n");
    EXPECT_EQ(pods.status(shell_id).state(), cri::CONTAINER_EXITED);
  }

  // Port forward to the echo server in the pod's network namespace.
  auto forward_url = [&] {
    grpc::ClientContext ctx;
    cri::PortForwardRequest req;
    req.set_pod_sandbox_id(pod_id);
    cri::PortForwardResponse resp;
    EXPECT_TRUE(runtime->PortForward(&ctx, req, &resp).ok());
    return resp.url();
  };
  auto forwarded = streamclient("portforward", {"-port", "8080"}, forward_url(), "through the pod network\n");
  EXPECT_EQ(forwarded.exit_code, 0) << forwarded.err;
  EXPECT_EQ(forwarded.out, "through the pod network\n");
  // Nothing listens on 8081: the error stream says so.
  auto refused = streamclient("portforward", {"-port", "8081"}, forward_url(), "x");
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("8081"), std::string::npos) << refused.err;

  // Bad requests never reach the server.
  grpc::ClientContext ctx;
  cri::ExecRequest none;
  none.set_container_id(server_id);
  none.add_cmd("true");
  cri::ExecResponse resp;
  EXPECT_EQ(runtime->Exec(&ctx, none, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  ASSERT_TRUE(pods.remove_pod(pod_id).ok()) << d.log();
  EXPECT_EQ(mounts_under(d.dir()), 0);
  EXPECT_EQ(d.ctr({"tasks", "ls", "-q"}, "k8s.io").out, "");
}

TEST(CriPods, AContainerNeedsAReadyPodAndAnImageItHas) {
  TempDir work;
  Daemon d(DaemonOptions{.config = pods_config(work.str(), "")});
  Pods pods(d);
  cri::PodSandboxConfig config = pod("lonely", work.sub("logs"));
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
  std::string id;
  EXPECT_EQ(pods.create("no-such-pod", config, container("c", {"true"}), &id).error_code(),
            grpc::StatusCode::NOT_FOUND);
  std::string pod_id;
  ASSERT_TRUE(pods.run(config, &pod_id).ok()) << d.log();
  auto missing = pods.create(pod_id, config, container("c", {"true"}), &id);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(missing.error_message().find("busybox"), std::string::npos) << missing.error_message();
  cri::PodSandboxConfig nameless = config;
  nameless.mutable_metadata()->clear_name();
  EXPECT_EQ(pods.run(nameless, &id).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(pods.remove_pod(pod_id).ok());
}

}  // namespace
}  // namespace ctrd::testing
