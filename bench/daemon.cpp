#include "daemon.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <thread>

extern char** environ;

namespace ctrd::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

Daemon::Daemon(const Target& t) {
  std::string tmpl = (fs::path(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") / "ctrd-bench-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    error_ = "mkdtemp " + tmpl + ": " + std::strerror(errno);
    return;
  }
  dir_ = tmpl;
  // Top-level keys (extra_config) must precede the first table, or TOML files them under it.
  std::ofstream(dir_ / "config.toml")
      << "version = 2\nroot = \"" << (dir_ / "root").string() << "\"\nstate = \"" << (dir_ / "state").string()
      << "\"\n"
      << t.extra_config << "[grpc]\naddress = \"" << (dir_ / "s.sock").string() << "\"\n";
  // The bench blocks its stop signals for sigwait; DaemonProcess unblocks them in the daemon.
  try {
    process_.emplace(t.argv(t.bin, dir_), dir_ / "log");
  } catch (const std::system_error& e) {
    error_ = "cannot start " + t.bin + ": " + std::strerror(e.code().value());
  }
}

Daemon::~Daemon() { shutdown(); }

void Daemon::shutdown() {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (process_) process_->stop(SIGTERM, std::chrono::seconds(20));
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

bool Daemon::wait_ready() {
  // Reconnect fast: the socket appears only once the daemon is up, and gRPC's
  // default first backoff (1 s) would hold every round up for nothing.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  auto stub = containerd::services::version::v1::Version::NewStub(channel);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    containerd::services::version::v1::VersionResponse resp;
    if (stub->Version(&ctx, google::protobuf::Empty(), &resp).ok()) return true;
    bool exited = false;
    {
      std::lock_guard lock(mu_);
      exited = !process_ || !process_->running();
    }
    if (exited) {
      error_ = "exited during start-up, see its log";
      return false;
    }
  }
  error_ = "did not answer Version within 60s";
  return false;
}

Flags& Flags::add(const std::string& name, int* value) {
  flags_[name] = value;
  return *this;
}
Flags& Flags::add(const std::string& name, size_t* value) {
  flags_[name] = value;
  return *this;
}
Flags& Flags::add(const std::string& name, std::string* value) {
  flags_[name] = value;
  return *this;
}

bool Flags::parse(int argc, char** argv) const {
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    auto it = flags_.find(name);
    if (it == flags_.end() || i + 1 >= argc) {
      std::cerr << (it == flags_.end() ? "unknown option " : "no value for ") << name << "\n";
      return false;
    }
    const std::string value = argv[i + 1];
    try {
      if (auto* i32 = std::get_if<int*>(&it->second)) **i32 = std::stoi(value);
      if (auto* size = std::get_if<size_t*>(&it->second)) **size = std::stoul(value);
    } catch (const std::exception&) {
      std::cerr << name << " takes a number, not " << value << "\n";
      return false;
    }
    if (auto* text = std::get_if<std::string*>(&it->second)) **text = value;
  }
  return true;
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::optional<Cpu> cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name may hold spaces and parentheses; fields resume after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;  // state .. cmajflt
  long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  const auto tck = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return Cpu{static_cast<double>(utime) / tck, static_cast<double>(stime) / tck};
}

namespace {
double status_field_mib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(field.size())) / 1024.0;
  }
  return 0;
}
}  // namespace

double peak_rss_mib(pid_t pid) { return status_field_mib(pid, "VmHWM:"); }
double rss_mib(pid_t pid) { return status_field_mib(pid, "VmRSS:"); }

int run_command(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

namespace {
std::mutex g_current_mu;
Daemon* g_current = nullptr;
}  // namespace

CurrentDaemon::CurrentDaemon(Daemon& d) {
  std::lock_guard lock(g_current_mu);
  g_current = &d;
}

CurrentDaemon::~CurrentDaemon() {
  std::lock_guard lock(g_current_mu);
  g_current = nullptr;
}

void stop_current_daemon_on_signals() {
  // Blocked before any thread exists so every thread inherits it; one thread
  // then takes the signal and stops the running daemon before exiting.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::thread([stop_signals] {
    int sig = 0;
    if (::sigwait(&stop_signals, &sig) != 0) return;
    std::lock_guard lock(g_current_mu);
    if (g_current != nullptr) g_current->shutdown();
    std::_Exit(128 + sig);
  }).detach();
}

}  // namespace ctrd::bench
