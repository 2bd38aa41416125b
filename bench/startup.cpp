// Start-up time and idle memory, ctrd against containerd, side by side.
//
// Each round starts ctrd then containerd (A B A B ...), each on a fresh
// temporary root, and measures the time from exec until its first Version call
// is answered (polled with a gRPC client, not ctr), then its RSS once idle.
// Prints medians and ratios. Usage:
//   bench_startup [--rounds N] [--ctrd PATH] [--containerd PATH] [--idle-ms MS]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Sample {
  double startup_ms = 0;
  double rss_mib = 0;
  double anon_mib = 0;  // private memory: RSS less mapped files (shared libraries, binary)
  bool ok = false;
};

struct Target {
  std::string name;
  std::vector<std::string> (*argv)(const std::string& bin, const fs::path& dir);
  std::string bin;
  std::string extra_config;
};

std::vector<std::string> ctrd_argv(const std::string& bin, const fs::path& dir) {
  return {bin,
          "--root",
          (dir / "root").string(),
          "--state",
          (dir / "state").string(),
          "--address",
          (dir / "s.sock").string(),
          "--log-level",
          "warn"};
}

std::vector<std::string> containerd_argv(const std::string& bin, const fs::path& dir) {
  return {bin, "--config", (dir / "config.toml").string(), "--log-level", "warn"};
}

double status_mib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return 0;
}

Sample measure(const Target& t, int idle_ms) {
  Sample s;
  char tmpl[] = "/tmp/ctrd-bench-XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);
  // Top-level keys (extra_config) must come before the first table.
  std::ofstream(dir / "config.toml") << "version = 2\n"
                                     << t.extra_config << "root = \"" << (dir / "root").string()
                                     << "\"\nstate = \"" << (dir / "state").string()
                                     << "\"\n[grpc]\naddress = \"" << (dir / "s.sock").string() << "\"\n";
  auto argv = t.argv(t.bin, dir);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, (dir / "log").c_str(), O_WRONLY | O_CREAT, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  const auto start = Clock::now();
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) {
    std::cerr << "cannot start " << t.bin << "\n";
    return s;
  }
  posix_spawn_file_actions_destroy(&fa);

  // Wait for the socket to accept (polled every 0.5 ms: gRPC's own reconnect
  // backoff would dominate what is measured), then time the first Version answer.
  const std::string sock = (dir / "s.sock").string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  const auto deadline = start + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (up) {
      auto channel = grpc::CreateChannel("unix:" + sock, grpc::InsecureChannelCredentials());
      auto stub = containerd::services::version::v1::Version::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      containerd::services::version::v1::VersionResponse resp;
      if (stub->Version(&ctx, google::protobuf::Empty(), &resp).ok()) {
        s.startup_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        s.ok = true;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  if (s.ok) {
    std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));  // let start-up work settle
    s.rss_mib = status_mib(pid, "VmRSS");
    s.anon_mib = status_mib(pid, "RssAnon");
  }
  ::kill(pid, SIGTERM);
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 20000) <= 0) ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(fd);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return s;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 10;
  int idle_ms = 1000;
  std::string ctrd = CTRD_BINARY_PATH;
  std::string containerd = "/usr/bin/containerd";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--rounds")
      rounds = std::stoi(argv[i + 1]);
    else if (k == "--ctrd")
      ctrd = argv[i + 1];
    else if (k == "--containerd")
      containerd = argv[i + 1];
    else if (k == "--idle-ms")
      idle_ms = std::stoi(argv[i + 1]);
  }
  std::vector<Target> targets{
      {"ctrd", ctrd_argv, ctrd, ""},
      {"containerd", containerd_argv, containerd, ""},
      {"containerd-no-cri", containerd_argv, containerd,
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
