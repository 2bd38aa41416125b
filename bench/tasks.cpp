// Running containers: ctrd against containerd, side by side (A B A B ...),
// each round on fresh roots with the same busybox image and the same shim
// (Debian's containerd-shim-runc-v2) and runc.
//
// run:   `ctr run --rm busybox true`, --runs times one after the other: the
//        median wall time of one run, as a user sees it.
// burst: --burst containers started at once by 10 client threads
//        (`ctr run -d ... sleep 1000`): wall time until all run, then the
//        daemon's resident memory and thread count with them running, and
//        its CPU time over both phases. Shims and runc are the same for both daemons, so the
//        differences are the daemons' own.
// Usage: bench_tasks [--rounds N] [--runs N] [--burst N] [--only ctrd|containerd]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"

namespace ctrd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kImage = "docker.io/library/busybox:latest";
const std::string kNamespace = "bench";

struct Sample {
  double run_ms = 0;
  double burst_s = 0;
  double rss_mib = 0;
  double cpu_s = 0;
  double threads = 0;
};

// The process's thread count, from /proc/<pid>/status; 0 when unreadable.
double thread_count(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("Threads:")) return std::stod(line.substr(8));
  }
  return 0;
}

int ctr(bench::Daemon& d, std::vector<std::string> args) {
  std::vector<std::string> argv{"ctr", "-a", d.socket_path(), "-n", kNamespace};
  argv.insert(argv.end(), args.begin(), args.end());
  return bench::run_command(argv, "/dev/null");
}

// Kills and removes what a round started, so no shim outlives its daemon.
void remove_all(bench::Daemon& d, int burst) {
  for (int i = 0; i < burst; ++i) {
    const std::string id = "b" + std::to_string(i);
    ctr(d, {"task", "kill", "-s", "SIGKILL", id});
  }
  for (int i = 0; i < burst; ++i) {
    const std::string id = "b" + std::to_string(i);
    ctr(d, {"task", "rm", "-f", id});
    ctr(d, {"containers", "rm", id});
  }
}

std::optional<Sample> measure(bench::Daemon& d, const fs::path& image, int runs, int burst,
                              std::string* error) {
  if (ctr(d, {"images", "import", image.string()}) != 0) {
    *error = "import failed";
    return std::nullopt;
  }
  Sample s;
  auto before = bench::cpu_seconds(d.pid());
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    if (ctr(d, {"run", "--rm", kImage, "r" + std::to_string(i), "true"}) != 0) {
      *error = "ctr run failed";
      return std::nullopt;
    }
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  s.run_ms = bench::median(times);

  constexpr int kClients = 10;
  std::atomic<int> next{0}, failed{0};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < burst;) {
        if (ctr(d, {"run", "-d", kImage, "b" + std::to_string(i), "sleep", "1000"}) != 0) ++failed;
      }
    });
  }
  for (auto& t : clients) t.join();
  s.burst_s = std::chrono::duration<double>(Clock::now() - start).count();
  s.rss_mib = bench::rss_mib(d.pid());
  s.threads = thread_count(d.pid());
  auto after = bench::cpu_seconds(d.pid());
  remove_all(d, burst);
  if (failed > 0 || !before || !after) {
    *error = std::to_string(failed.load()) + " of the burst's runs failed";
    return std::nullopt;
  }
  s.cpu_s = after->total() - before->total();
  return s;
}

}  // namespace
}  // namespace ctrd

int main(int argc, char** argv) {
  using namespace ctrd;
  int rounds = 3, runs = 10, burst = 20;
  std::string only;
  std::string ctrd = CTRD_BINARY_PATH;  // --ctrd: another build, for before/after figures
  if (!bench::Flags()
           .add("--rounds", &rounds)
           .add("--runs", &runs)
           .add("--burst", &burst)
           .add("--only", &only)
           .add("--ctrd", &ctrd)
           .parse(argc, argv))
    return 2;
  bench::stop_current_daemon_on_signals();
  std::vector<bench::Target> targets;
  if (only.empty() || only == "ctrd") targets.push_back({"ctrd", bench::ctrd_argv, ctrd, ""});
  if (only.empty() || only == "containerd") {
    targets.push_back({"containerd", bench::containerd_argv, "/usr/bin/containerd",
                       "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"});
  }
  const fs::path image = fs::temp_directory_path() / "ctrd-bench-busybox.tar";
  if (bench::run_command({"python3", CTRD_MKIMAGE_PATH, "--busybox", image.string()}, "/dev/stderr") != 0) {
    std::cerr << "mkimage failed\n";
    return 1;
  }

  std::vector<std::vector<double>> run_ms(targets.size()), burst_s(targets.size()), rss(targets.size()),
      cpu(targets.size()), threads(targets.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t t = 0; t < targets.size(); ++t) {
      bench::Daemon d(targets[t]);
      bench::CurrentDaemon current(d);
      if (!d.error().empty() || !d.wait_ready()) {
        std::cerr << targets[t].name << ": " << d.error() << "\n";
        return 1;
      }
      std::string error;
      auto s = measure(d, image, runs, burst, &error);
      if (!s) {
        std::cerr << targets[t].name << ": " << error << "\n";
        return 1;
      }
      std::fprintf(
          stderr,
          "round %d %-11s run --rm %6.1f ms, burst of %d %5.2f s, RSS %5.1f MiB, %3.0f threads, daemon CPU "
          "%5.2f s\n",
          r + 1, targets[t].name.c_str(), s->run_ms, burst, s->burst_s, s->rss_mib, s->threads, s->cpu_s);
      run_ms[t].push_back(s->run_ms);
      burst_s[t].push_back(s->burst_s);
      rss[t].push_back(s->rss_mib);
      cpu[t].push_back(s->cpu_s);
      threads[t].push_back(s->threads);
    }
  }
  std::printf("%-12s %14s %12s %14s %10s %14s   (medians of %d rounds, A B A B; burst of %d by 10 clients)\n",
              "daemon", "run --rm (ms)", "burst (s)", "RSS (MiB)", "threads", "daemon CPU (s)", rounds,
              burst);
  for (size_t t = 0; t < targets.size(); ++t) {
    std::printf("%-12s %14.1f %12.2f %14.1f %10.0f %14.2f\n", targets[t].name.c_str(),
                bench::median(run_ms[t]), bench::median(burst_s[t]), bench::median(rss[t]),
                bench::median(threads[t]), bench::median(cpu[t]));
  }
  for (size_t t = 1; t < targets.size(); ++t) {
    std::printf("ctrd / %-10s run %.3f  burst %.3f  RSS %.3f  CPU %.3f\n", targets[t].name.c_str(),
                bench::median(run_ms[0]) / bench::median(run_ms[t]),
                bench::median(burst_s[0]) / bench::median(burst_s[t]),
                bench::median(rss[0]) / bench::median(rss[t]), bench::median(cpu[0]) / bench::median(cpu[t]));
  }
  std::error_code ec;
  fs::remove(image, ec);
  return 0;
}
