// Pods through the CRI: ctrd against containerd's CRI plugin, side by side
// (A B A B ...), each round on fresh roots with the same images (a pause image
// made from ctrd-pause, busybox), the same CNI bridge plugins on a private
// subnet without a gateway, the same shim and runc.
//
// pod start: RunPodSandbox, then CreateContainer and StartContainer of one
//            container, --runs times one after the other: the median wall time.
// pods:      --pods such pods running at once: the daemon's resident memory
//            with them running, and its CPU time to start and then remove them.
// pull:      PullImage of a four-layer gzip image of about 100 MB (made with
//            tools/mkimage.py from --layers) from Debian's docker-registry on
//            loopback, through a hosts.toml: wall time and the daemon's CPU.
// Usage: bench_cri [--rounds N] [--runs N] [--pods N] [--only ctrd|containerd]
//                  [--what pods|pull|all] [--layers DIR,DIR,...] [--ctrd PATH]
#include <cri/runtime/v1/api.grpc.pb.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"
#include "support/daemon_process.h"

namespace ctrd {
namespace {

namespace fs = std::filesystem;
namespace cri = ::runtime::v1;
using Clock = std::chrono::steady_clock;

constexpr const char* kBridge = "ctrdbench0";
const std::string kPauseImage = "docker.io/library/pause:bench";
const std::string kBusybox = "docker.io/library/busybox:latest";

struct Sample {
  double pod_start_ms = 0;
  double rss_mib = 0;
  double cpu_s = 0;
  double pull_s = 0;
  double pull_cpu_s = 0;
};

// What one round does, and with what.
struct Plan {
  std::vector<fs::path> images;  // imported first: the pause image and busybox
  int runs = 0;
  int pods = 0;
  std::string pull_ref;  // empty: no pull
};

std::string cri_config(const fs::path& work) {
  return "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
         "sandbox_image = \"" +
         kPauseImage +
         "\"\n"
         "restrict_oom_score_adj = true\n"
         "netns_mounts_under_state_dir = true\n"
         "[plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
         "bin_dir = \"/usr/lib/cni\"\n"
         "conf_dir = \"" +
         (work / "net.d").string() +
         "\"\n"
         "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
         "config_path = \"" +
         (work / "certs.d").string() + "\"\n";
}

class Client {
 public:
  explicit Client(const bench::Daemon& d)
      : channel_(grpc::CreateChannel(d.address(), grpc::InsecureChannelCredentials())),
        runtime_(cri::RuntimeService::NewStub(channel_)),
        images_(cri::ImageService::NewStub(channel_)) {}

  bool pull(const std::string& ref) {
    cri::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::PullImageResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
    grpc::Status s = images_->PullImage(&ctx, req, &resp);
    if (!s.ok()) std::cerr << "PullImage failed: " << s.error_message() << "\n";
    return s.ok();
  }

  // A pod with one running container; its id, or nothing on failure.
  std::optional<std::string> start_pod(int n) {
    cri::PodSandboxConfig pod;
    pod.mutable_metadata()->set_name("bench-" + std::to_string(n));
    pod.mutable_metadata()->set_namespace_("bench");
    pod.mutable_metadata()->set_uid("uid-" + std::to_string(n));
    cri::RunPodSandboxRequest run;
    *run.mutable_config() = pod;
    cri::RunPodSandboxResponse ran;
    if (!call(&cri::RuntimeService::Stub::RunPodSandbox, run, &ran)) return std::nullopt;
    cri::CreateContainerRequest create;
    create.set_pod_sandbox_id(ran.pod_sandbox_id());
    create.mutable_config()->mutable_metadata()->set_name("sleeper");
    create.mutable_config()->mutable_image()->set_image(kBusybox);
    create.mutable_config()->add_command("sleep");
    create.mutable_config()->add_command("1000");
    *create.mutable_sandbox_config() = pod;
    cri::CreateContainerResponse created;
    if (!call(&cri::RuntimeService::Stub::CreateContainer, create, &created)) return std::nullopt;
    cri::StartContainerRequest start;
    start.set_container_id(created.container_id());
    cri::StartContainerResponse started;
    if (!call(&cri::RuntimeService::Stub::StartContainer, start, &started)) return std::nullopt;
    return ran.pod_sandbox_id();
  }

  bool remove_pod(const std::string& id) {
    cri::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse stopped;
    cri::RemovePodSandboxRequest remove;
    remove.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse removed;
    return call(&cri::RuntimeService::Stub::StopPodSandbox, stop, &stopped) &&
           call(&cri::RuntimeService::Stub::RemovePodSandbox, remove, &removed);
  }

 private:
  template <typename Method, typename Request, typename Response>
  bool call(Method method, const Request& req, Response* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status s = ((*runtime_).*method)(&ctx, req, resp);
    if (!s.ok()) std::cerr << "cri call failed: " << s.error_message() << "\n";
    return s.ok();
  }
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cri::RuntimeService::Stub> runtime_;
  std::unique_ptr<cri::ImageService::Stub> images_;
};

int ctr(bench::Daemon& d, std::vector<std::string> args) {
  std::vector<std::string> argv{"ctr", "-a", d.socket_path(), "-n", "k8s.io"};
  argv.insert(argv.end(), args.begin(), args.end());
  return bench::run_command(argv, "/dev/null");
}

std::optional<Sample> measure(bench::Daemon& d, const Plan& plan, std::string* error) {
  for (const auto& image : plan.images) {
    if (ctr(d, {"images", "import", image.string()}) != 0) {
      *error = "import of " + image.string() + " failed";
      return std::nullopt;
    }
  }
  Client client(d);
  Sample s;
  if (!plan.pull_ref.empty()) {
    auto before = bench::cpu_seconds(d.pid());
    const auto start = Clock::now();
    if (!client.pull(plan.pull_ref)) {
      *error = "pull failed";
      return std::nullopt;
    }
    s.pull_s = std::chrono::duration<double>(Clock::now() - start).count();
    auto after = bench::cpu_seconds(d.pid());
    if (before && after) s.pull_cpu_s = after->total() - before->total();
  }
  if (plan.runs == 0 && plan.pods == 0) return s;

  std::vector<double> times;
  for (int i = 0; i < plan.runs; ++i) {
    const auto start = Clock::now();
    auto id = client.start_pod(i);
    if (!id) {
      *error = "pod start failed";
      return std::nullopt;
    }
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!client.remove_pod(*id)) {
      *error = "pod removal failed";
      return std::nullopt;
    }
  }
  s.pod_start_ms = bench::median(times);

  auto before = bench::cpu_seconds(d.pid());
  std::vector<std::string> running;
  for (int i = 0; i < plan.pods; ++i) {
    auto id = client.start_pod(plan.runs + i);
    if (!id) break;
    running.push_back(*id);
  }
  s.rss_mib = bench::rss_mib(d.pid());
  bool removed = true;
  for (const auto& id : running) removed = client.remove_pod(id) && removed;
  auto after = bench::cpu_seconds(d.pid());
  if (static_cast<int>(running.size()) != plan.pods || !removed || !before || !after) {
    *error = "started " + std::to_string(running.size()) + " of " + std::to_string(plan.pods) + " pods";
    return std::nullopt;
  }
  s.cpu_s = after->total() - before->total();
  return s;
}

// Debian's docker-registry on loopback holding the pull image; stopped with
// the object.
class PullRegistry {
 public:
  // Builds the image from `layers` and pushes it; error() says why not.
  PullRegistry(const fs::path& work, const std::string& layers) {
    const fs::path dir = work / "registry";
    fs::create_directories(dir / "storage");
    port_ = bench::free_loopback_port();
    std::ofstream(dir / "config.yml") << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                                      << "    rootdirectory: " << (dir / "storage").string()
                                      << "\nhttp:\n  addr: 127.0.0.1:" << port_ << "\n";
    process_.emplace(
        std::vector<std::string>{"/usr/bin/docker-registry", "serve", (dir / "config.yml").string()},
        dir / "registry.log");
    const fs::path tar = work / "pull.tar";
    std::vector<std::string> mk{"python3", CTRD_MKIMAGE_PATH, tar.string(), "bench/pull:1"};
    std::stringstream dirs(layers);
    for (std::string layer; std::getline(dirs, layer, ',');) mk.push_back(layer);
    if (bench::run_command(mk, "/dev/stderr") != 0) {
      error_ = "mkimage failed";
      return;
    }
    ref_ = host() + "/bench/pull:1";
    // Bounded retries while the registry starts listening.
    int pushed = -1;
    for (int attempt = 0; attempt < 50 && pushed != 0; ++attempt) {
      pushed = bench::run_command({"skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                                   "oci-archive:" + tar.string(), "docker://" + ref_},
                                  (work / "push.log").string());
      if (pushed != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (pushed != 0)
      error_ = "push to the loopback registry failed (see " + (work / "push.log").string() + ")";
    std::fprintf(stderr, "pull image: %.1f MB in four layers\n",
                 static_cast<double>(fs::file_size(tar)) / 1e6);
    const fs::path hosts = work / "certs.d" / host();
    fs::create_directories(hosts);
    std::ofstream(hosts / "hosts.toml") << "server = \"http://" << host() << "\"\n";
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& ref() const { return ref_; }
  const std::string& error() const { return error_; }

 private:
  int port_ = 0;
  std::string ref_, error_;
  std::optional<testing::DaemonProcess> process_;
};

}  // namespace
}  // namespace ctrd

int main(int argc, char** argv) {
  using namespace ctrd;
  int rounds = 3, runs = 10, pods = 30;
  std::string only, what = "all", layers = bench::kImageLayers;
  std::string ctrd = CTRD_BINARY_PATH;
  if (!bench::Flags()
           .add("--rounds", &rounds)
           .add("--runs", &runs)
           .add("--pods", &pods)
           .add("--only", &only)
           .add("--what", &what)
           .add("--layers", &layers)
           .add("--ctrd", &ctrd)
           .parse(argc, argv))
    return 2;
  const bool do_pods = what == "all" || what == "pods", do_pull = what == "all" || what == "pull";
  bench::stop_current_daemon_on_signals();
  const fs::path work = fs::temp_directory_path() / "ctrd-bench-cri";
  fs::create_directories(work / "net.d");
  fs::create_directories(work / "pause");
  fs::create_directories(work / "certs.d");
  std::ofstream(work / "net.d" / "10-bench.conflist")
      << R"({"cniVersion":"0.4.0","name":"bench","plugins":[{"type":"bridge","bridge":")" << kBridge
      << R"(","ipam":{"type":"host-local","dataDir":")" << (work / "ipam").string()
      << R"(","ranges":[[{"subnet":"10.236.0.0/22"}]]}}]})";
  fs::copy_file(CTRD_PAUSE_PATH, work / "pause" / "pause", fs::copy_options::overwrite_existing);
  Plan plan;
  if (do_pods) {
    plan.images = {work / "pause.tar", work / "busybox.tar"};
    plan.runs = runs;
    plan.pods = pods;
    if (bench::run_command({"python3", CTRD_MKIMAGE_PATH, "--cmd", "/pause", plan.images[0].string(),
                            kPauseImage, (work / "pause").string()},
                           "/dev/stderr") != 0 ||
        bench::run_command({"python3", CTRD_MKIMAGE_PATH, "--busybox", plan.images[1].string()},
                           "/dev/stderr") != 0) {
      std::cerr << "mkimage failed\n";
      return 1;
    }
  }
  std::optional<PullRegistry> registry;
  if (do_pull) {
    registry.emplace(work, layers);
    if (!registry->error().empty()) {
      std::cerr << registry->error() << "\n";
      return 1;
    }
    plan.pull_ref = registry->ref();
  }

  std::vector<bench::Target> targets;
  // Both read the CRI settings from the config file (containerd_argv: --config, nothing else).
  if (only.empty() || only == "ctrd")
    targets.push_back({"ctrd", bench::containerd_argv, ctrd, cri_config(work)});
  if (only.empty() || only == "containerd")
    targets.push_back({"containerd", bench::containerd_argv, "/usr/bin/containerd", cri_config(work)});
  std::vector<std::vector<double>> start_ms(targets.size()), rss(targets.size()), cpu(targets.size()),
      pull_s(targets.size()), pull_cpu(targets.size());
  int status = 0;
  for (int r = 0; r < rounds && status == 0; ++r) {
    for (size_t t = 0; t < targets.size(); ++t) {
      bench::Daemon d(targets[t]);
      bench::CurrentDaemon current(d);
      if (!d.error().empty() || !d.wait_ready()) {
        std::cerr << targets[t].name << ": " << d.error() << "\n";
        status = 1;
        break;
      }
      std::string error;
      auto s = measure(d, plan, &error);
      if (!s) {
        std::cerr << targets[t].name << ": " << error << "\n";
        status = 1;
        break;
      }
      std::fprintf(stderr,
                   "round %d %-11s pod start %6.1f ms, %d pods: RSS %5.1f MiB, daemon CPU %5.2f s; "
                   "pull %5.2f s, daemon CPU %5.2f s\n",
                   r + 1, targets[t].name.c_str(), s->pod_start_ms, pods, s->rss_mib, s->cpu_s, s->pull_s,
                   s->pull_cpu_s);
      start_ms[t].push_back(s->pod_start_ms);
      rss[t].push_back(s->rss_mib);
      cpu[t].push_back(s->cpu_s);
      pull_s[t].push_back(s->pull_s);
      pull_cpu[t].push_back(s->pull_cpu_s);
    }
  }
  if (status == 0) {
    std::printf("%-12s %15s %10s %19s %10s %15s   (medians of %d rounds, A B A B; %d pods)\n", "daemon",
                "pod start (ms)", "RSS (MiB)", "CPU start+rm (s)", "pull (s)", "pull CPU (s)", rounds, pods);
    for (size_t t = 0; t < targets.size(); ++t)
      std::printf("%-12s %15.1f %10.1f %19.2f %10.2f %15.2f\n", targets[t].name.c_str(),
                  bench::median(start_ms[t]), bench::median(rss[t]), bench::median(cpu[t]),
                  bench::median(pull_s[t]), bench::median(pull_cpu[t]));
    auto ratio = [&](const std::vector<std::vector<double>>& v, size_t t) {
      const double base = bench::median(v[t]);
      return base > 0 ? bench::median(v[0]) / base : 0.0;
    };
    for (size_t t = 1; t < targets.size(); ++t)
      std::printf("ctrd / %-10s pod start %.3f  RSS %.3f  CPU %.3f  pull %.3f  pull CPU %.3f\n",
                  targets[t].name.c_str(), ratio(start_ms, t), ratio(rss, t), ratio(cpu, t), ratio(pull_s, t),
                  ratio(pull_cpu, t));
  }
  registry.reset();
  bench::run_command({"ip", "link", "del", kBridge}, "/dev/null");
  std::error_code ec;
  fs::remove_all(work, ec);
  return status;
}
