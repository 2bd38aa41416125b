// Image import with unpack, and Containers.List under load: ctrd against
// containerd, side by side (A B A B ...), each round on fresh roots.
//
// import: `ctr images import` of a multi-layer gzip image built with the
//   project's tools/mkimage.py from directories of this machine (default: /usr/lib/gcc,
//   /usr/lib/python3, /usr/include/c++, /usr/share/perl — about 320 MB and
//   7,500 files in four layers). Measures the import's wall time, the daemon's
//   CPU time during it and its peak RSS (VmHWM).
// list: 100 containers in one namespace (each with a ~2 KB spec, as ctr
//   makes), then 16 threads calling Containers.List for --list-calls calls in
//   all; reports the daemon's CPU time per call.
// Usage:
//   bench_images [--rounds N] [--only ctrd|containerd] [--what import|list|all]
//                [--layers DIR,DIR,...] [--list-calls N] [--ctrd PATH] [--containerd PATH]
#include <fcntl.h>
#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"

namespace ctrd {
namespace {

namespace fs = std::filesystem;
namespace api = containerd::services::containers::v1;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kNamespace = "bench";

struct ImportSample {
  double wall_s = 0;
  bench::Cpu cpu;
  double peak_rss_mib = 0;
};

std::optional<ImportSample> import_image(bench::Daemon& d, const fs::path& image, std::string* error) {
  auto before = bench::cpu_seconds(d.pid());
  const auto start = Clock::now();
  int rc = bench::run_command(
      {"ctr", "-a", d.socket_path(), "-n", std::string(kNamespace), "images", "import", image.string()},
      "/dev/null");
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  auto after = bench::cpu_seconds(d.pid());
  if (rc != 0) {
    *error = "ctr images import exited " + std::to_string(rc);
    return std::nullopt;
  }
  if (!before || !after) {
    *error = "cannot read the daemon's CPU time";
    return std::nullopt;
  }
  return ImportSample{
      wall, {after->user - before->user, after->sys - before->sys}, bench::peak_rss_mib(d.pid())};
}

std::unique_ptr<grpc::ClientContext> context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", std::string(kNamespace));
  return ctx;
}

// A spec of the size ctr generates for busybox (~2 KB of JSON).
std::string spec_json(int i) {
  std::ostringstream s;
  s << R"({"ociVersion":"1.0.2-dev","process":{"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"cwd":"/","capabilities":{"bounding":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},"root":{"path":"rootfs"},"hostname":"c)"
    << i
    << R"(","mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}],"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},"cgroupsPath":"/default/c)"
    << i
    << R"(","namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network"}],"maskedPaths":["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],"readonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}})";
  return s.str();
}

struct ListSample {
  double cpu_us_per_call = 0;
  double calls_per_s = 0;
  double version_cpu_us_per_call = 0;  // Version, the cheapest call: the per-call overhead
};

// Daemon CPU per call (microseconds) and calls per second of `calls` calls
// made by 16 threads.
template <typename Call>
std::optional<std::pair<double, double>> under_load(bench::Daemon& d, int calls, Call call) {
  constexpr int kCallers = 16;
  std::atomic<int> next{0}, failed{0};
  auto before = bench::cpu_seconds(d.pid());
  const auto start = Clock::now();
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&] {
      while (next.fetch_add(1) < calls) {
        if (!call()) ++failed;
      }
    });
  }
  for (auto& t : callers) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  auto after = bench::cpu_seconds(d.pid());
  if (failed > 0 || !before || !after) return std::nullopt;
  return std::make_pair((after->total() - before->total()) / calls * 1e6, calls / wall);
}

std::optional<ListSample> list_under_load(bench::Daemon& d, int calls, std::string* error) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(d.address(), grpc::InsecureChannelCredentials(), args);
  auto stub = api::Containers::NewStub(channel);
  for (int i = 0; i < 100; ++i) {
    api::CreateContainerRequest req;
    auto* c = req.mutable_container();
    c->set_id("c" + std::to_string(i));
    c->set_image("docker.io/library/busybox:latest");
    c->mutable_runtime()->set_name("io.containerd.runc.v2");
    c->mutable_spec()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Spec");
    c->mutable_spec()->set_value(spec_json(i));
    c->set_snapshotter("overlayfs");
    c->set_snapshot_key("c" + std::to_string(i));
    (*c->mutable_labels())["io.containerd.image.config.stop-signal"] = "SIGTERM";
    api::CreateContainerResponse resp;
    auto s = stub->Create(context().get(), req, &resp);
    if (!s.ok()) {
      *error = "create: " + s.error_message();
      return std::nullopt;
    }
  }
  auto list = under_load(d, calls, [&] {
    api::ListContainersRequest req;
    api::ListContainersResponse resp;
    return stub->List(context().get(), req, &resp).ok() && resp.containers_size() == 100;
  });
  auto version_stub = containerd::services::version::v1::Version::NewStub(channel);
  auto version = under_load(d, calls * 10, [&] {
    containerd::services::version::v1::VersionResponse resp;
    grpc::ClientContext ctx;
    return version_stub->Version(&ctx, google::protobuf::Empty(), &resp).ok();
  });
  if (!list || !version) {
    *error = "List or Version calls failed";
    return std::nullopt;
  }
  return ListSample{list->first, list->second, version->first};
}

}  // namespace
}  // namespace ctrd

int main(int argc, char** argv) {
  using namespace ctrd;
  int rounds = 3;
  int list_calls = 5000;
  std::string only, what = "all";
  std::string metrics = "off";  // on: also ctrd with its metrics endpoint and histograms on
  std::string ctrd_bin = CTRD_BINARY_PATH, containerd_bin = "/usr/bin/containerd";
  std::string layers = bench::kImageLayers;
  if (!bench::Flags()
           .add("--rounds", &rounds)
           .add("--only", &only)
           .add("--what", &what)
           .add("--layers", &layers)
           .add("--list-calls", &list_calls)
           .add("--ctrd", &ctrd_bin)
           .add("--containerd", &containerd_bin)
           .add("--metrics", &metrics)
           .parse(argc, argv))
    return 2;
  const bool with_metrics = metrics == "on";
  bench::stop_current_daemon_on_signals();
  std::vector<bench::Target> targets;
  if (only.empty() || only == "ctrd") targets.push_back({"ctrd", bench::ctrd_argv, ctrd_bin, ""});
  if (only.empty() || only == "containerd") {
    targets.push_back({"containerd", bench::containerd_argv, containerd_bin,
                       "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"});
  }

  if (with_metrics && (only.empty() || only == "ctrd")) {
    targets.push_back({"ctrd+metric", bench::ctrd_argv, ctrd_bin,
                       "[metrics]\naddress = \"127.0.0.1:0\"\ngrpc_histogram = true\n"});
  }
  fs::path image = fs::temp_directory_path() / "ctrd-bench-image.tar";
  const bool do_import = what == "all" || what == "import";
  const bool do_list = what == "all" || what == "list";
  if (do_import) {
    std::vector<std::string> mk{"python3", CTRD_MKIMAGE_PATH, image.string(), "docker.io/library/bench:1"};
    std::stringstream dirs(layers);
    for (std::string dir; std::getline(dirs, dir, ',');) mk.push_back(dir);
    std::fprintf(stderr, "building %s from %s\n", image.c_str(), layers.c_str());
    if (bench::run_command(mk, "/dev/stderr") != 0) {
      std::cerr << "mkimage failed\n";
      return 1;
    }
    std::fprintf(stderr, "image: %.1f MB\n", static_cast<double>(fs::file_size(image)) / 1e6);
  }

  std::vector<std::vector<double>> wall(targets.size()), cpu(targets.size()), rss(targets.size()),
      list_cpu(targets.size()), list_rate(targets.size()), version_cpu(targets.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t t = 0; t < targets.size(); ++t) {
      std::string error;
      if (do_import) {
        bench::Daemon d(targets[t]);
        bench::CurrentDaemon current(d);
        if (!d.error().empty() || !d.wait_ready()) {
          std::cerr << targets[t].name << ": " << d.error() << "\n";
          return 1;
        }
        auto s = import_image(d, image, &error);
        if (!s) {
          std::cerr << targets[t].name << ": " << error << "\n";
          return 1;
        }
        std::fprintf(
            stderr,
            "round %d %-11s import %6.2f s wall, %6.2f s CPU (user %.2f sys %.2f), peak RSS %.1f MiB\n",
            r + 1, targets[t].name.c_str(), s->wall_s, s->cpu.total(), s->cpu.user, s->cpu.sys,
            s->peak_rss_mib);
        wall[t].push_back(s->wall_s);
        cpu[t].push_back(s->cpu.total());
        rss[t].push_back(s->peak_rss_mib);
      }
      if (do_list) {
        bench::Daemon d(targets[t]);
        bench::CurrentDaemon current(d);
        if (!d.error().empty() || !d.wait_ready()) {
          std::cerr << targets[t].name << ": " << d.error() << "\n";
          return 1;
        }
        auto s = list_under_load(d, list_calls, &error);
        if (!s) {
          std::cerr << targets[t].name << ": " << error << "\n";
          return 1;
        }
        std::fprintf(
            stderr, "round %d %-11s list   %7.1f us CPU/call, %8.0f calls/s; version %5.1f us CPU/call\n",
            r + 1, targets[t].name.c_str(), s->cpu_us_per_call, s->calls_per_s, s->version_cpu_us_per_call);
        version_cpu[t].push_back(s->version_cpu_us_per_call);
        list_cpu[t].push_back(s->cpu_us_per_call);
        list_rate[t].push_back(s->calls_per_s);
      }
    }
  }
  if (do_import) {
    std::printf("%-12s %10s %14s %14s   (import with unpack, medians of %d, A B A B)\n", "daemon", "wall (s)",
                "daemon CPU (s)", "peak RSS MiB", rounds);
    for (size_t t = 0; t < targets.size(); ++t) {
      std::printf("%-12s %10.2f %14.2f %14.1f\n", targets[t].name.c_str(), bench::median(wall[t]),
                  bench::median(cpu[t]), bench::median(rss[t]));
    }
    for (size_t t = 1; t < targets.size(); ++t) {
      std::printf("ctrd / %-10s wall %.3f  CPU %.3f  peak RSS %.3f\n", targets[t].name.c_str(),
                  bench::median(wall[0]) / bench::median(wall[t]),
                  bench::median(cpu[0]) / bench::median(cpu[t]),
                  bench::median(rss[0]) / bench::median(rss[t]));
    }
  }
  if (do_list) {
    std::printf("%-12s %16s %12s %18s   (Containers.List of 100 and Version, 16 callers, medians of %d)\n",
                "daemon", "List CPU/call us", "List calls/s", "Version CPU/call us", rounds);
    for (size_t t = 0; t < targets.size(); ++t) {
      std::printf("%-12s %16.1f %12.0f %18.1f\n", targets[t].name.c_str(), bench::median(list_cpu[t]),
                  bench::median(list_rate[t]), bench::median(version_cpu[t]));
    }
    for (size_t t = 1; t < targets.size(); ++t) {
      std::printf("ctrd / %-10s CPU per call: List %.3f  Version %.3f\n", targets[t].name.c_str(),
                  bench::median(list_cpu[0]) / bench::median(list_cpu[t]),
                  bench::median(version_cpu[0]) / bench::median(version_cpu[t]));
    }
  }
  std::error_code ec;
  fs::remove(image, ec);
  return 0;
}
