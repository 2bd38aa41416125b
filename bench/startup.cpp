// Start-up time and idle memory, ctrd against containerd, side by side.
//
// Each round starts ctrd, then containerd, then containerd without its CRI
// plugin (A B C A B C ...), each on a fresh temporary root, and measures the
// time from exec until its first Version call is answered (the socket polled
// every 0.5 ms, then one gRPC call: not ctr), then its RSS once idle. Prints
// medians and ratios. Usage:
//   bench_startup [--rounds N] [--ctrd PATH] [--containerd PATH] [--idle-ms MS]
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"

namespace {

namespace bench = ctrd::bench;
using Clock = std::chrono::steady_clock;

struct Sample {
  double startup_ms = 0;
  double rss_mib = 0;
  double anon_mib = 0;  // private memory: RSS less mapped files (shared libraries, the binary)
  bool ok = false;
};

double status_mib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return 0;
}

bool accepts(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return up;
}

Sample measure(const bench::Target& t, int idle_ms) {
  Sample s;
  bench::Daemon d(t);
  if (!d.error().empty()) {
    std::cerr << t.name << ": " << d.error() << "\n";
    return s;
  }
  // gRPC's own reconnect backoff would dominate what is measured: poll the
  // socket, then time the first Version answer.
  const auto deadline = d.started_at() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    if (accepts(d.socket_path())) {
      auto stub = containerd::services::version::v1::Version::NewStub(
          grpc::CreateChannel(d.address(), grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      containerd::services::version::v1::VersionResponse resp;
      if (stub->Version(&ctx, google::protobuf::Empty(), &resp).ok()) {
        s.startup_ms = std::chrono::duration<double, std::milli>(Clock::now() - d.started_at()).count();
        s.ok = true;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  if (s.ok) {
    std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));  // let start-up work settle
    s.rss_mib = status_mib(d.pid(), "VmRSS");
    s.anon_mib = status_mib(d.pid(), "RssAnon");
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 10;
  int idle_ms = 1000;
  std::string ctrd = CTRD_BINARY_PATH;
  std::string containerd = "/usr/bin/containerd";
  if (!bench::Flags()
           .add("--rounds", &rounds)
           .add("--ctrd", &ctrd)
           .add("--containerd", &containerd)
           .add("--idle-ms", &idle_ms)
           .parse(argc, argv))
    return 2;
  const std::vector<bench::Target> targets{
      {"ctrd", bench::ctrd_argv, ctrd, ""},
      {"containerd", bench::containerd_argv, containerd, ""},
      {"containerd-no-cri", bench::containerd_argv, containerd,
       "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"},
  };
  std::vector<std::vector<double>> startup(targets.size()), rss(targets.size()), anon(targets.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t t = 0; t < targets.size(); ++t) {
      Sample s = measure(targets[t], idle_ms);
      if (!s.ok) {
        std::cerr << targets[t].name << ": did not answer Version within 60s\n";
        return 1;
      }
      startup[t].push_back(s.startup_ms);
      rss[t].push_back(s.rss_mib);
      anon[t].push_back(s.anon_mib);
    }
  }
  using bench::median;
  std::printf("%-20s %14s %14s %15s   (medians of %d starts, A B A B order)\n", "daemon", "startup (ms)",
              "idle RSS (MiB)", "anon RSS (MiB)", rounds);
  for (size_t t = 0; t < targets.size(); ++t) {
    std::printf("%-20s %14.1f %14.1f %15.1f\n", targets[t].name.c_str(), median(startup[t]), median(rss[t]),
                median(anon[t]));
  }
  for (size_t t = 1; t < targets.size(); ++t) {
    std::printf("ctrd / %-18s startup %.3f  RSS %.3f  anon RSS %.3f\n", targets[t].name.c_str(),
                median(startup[0]) / median(startup[t]), median(rss[0]) / median(rss[t]),
                median(anon[0]) / median(anon[t]));
  }
  return 0;
}
