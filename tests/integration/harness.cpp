#include "harness.h"

#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <sstream>

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace ctrd::testing {
namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
            const std::string& in_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.empty() ? "/dev/null" : in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err_path == out_path) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::string& log_path) {
  pid_ = spawn(argv, log_path, log_path, "");
  pidfd_ = pidfd_open(pid_);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(30));
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool Process::running() {
  if (status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = decode_status(st);
    return false;
  }
  return r == 0;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  pollfd p{pidfd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  int st = 0;
  if (::waitpid(pid_, &st, 0) == pid_) status_ = decode_status(st);
  return status_;
}

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::string& stdin_file) {
  TempDir tmp;
  const std::string out = (tmp.path() / "out").string();
  const std::string err = (tmp.path() / "err").string();
  RunResult result;
  pid_t pid = spawn(argv, out, err, stdin_file);
  int fd = pidfd_open(pid);
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ::close(fd);
  result.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

std::string wait_for_content(const std::filesystem::path& path, const std::vector<std::string>& needles,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ::inotify_add_watch(fd, path.c_str(), IN_MODIFY | IN_CLOSE_WRITE);
  std::string text;
  while (true) {
    text = read_file(path);
    bool all = true;
    for (const auto& n : needles) all = all && text.find(n) != std::string::npos;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (all || left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
    }
  }
  ::close(fd);
  return text;
}

std::string hex(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

std::string sha256_digest(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return "sha256:" + hex(md, len);
}

std::string ctrd_binary() {
  const char* env = std::getenv("CTRD_BINARY");
  return env ? env : CTRD_BINARY_PATH;
}

std::string ctr_binary() {
  const char* env = std::getenv("CTR_BINARY");
  return env ? env : "/usr/bin/ctr";
}

std::unique_ptr<grpc::ClientContext> context_for(const std::string& ns, const std::string& lease) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!ns.empty()) ctx->AddMetadata("containerd-namespace", ns);
  if (!lease.empty()) ctx->AddMetadata("containerd-lease", lease);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

DaemonOptions without_gc() {
  DaemonOptions o;
  o.config =
      "version = 2\n[plugins.\"io.containerd.gc.v1.scheduler\"]\n"
      "  startup_delay = \"0s\"\n  mutation_threshold = 1000000000\n  deletion_threshold = 1000000000\n";
  return o;
}

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {
  if (!options_.config.empty()) std::ofstream(dir() / "config.toml") << options_.config;
  if (!options_.start) return;
  start();
  if (options_.wait_ready && !wait_ready()) {
    throw std::runtime_error("ctrd did not become ready; log:\n" + log());
  }
}

Daemon::~Daemon() {
  if (process_ && process_->running()) stop(std::chrono::seconds(20));
  process_.reset();  // SIGKILL if it would not stop
}

std::string Daemon::log() const { return read_file(dir() / ("ctrd-" + std::to_string(starts_) + ".log")); }

void Daemon::start() {
  std::vector<std::string> argv{ctrd_binary(), "--root", root(), "--state", state(), "--address", address()};
  if (!options_.config.empty()) {
    argv.push_back("--config");
    argv.push_back((dir() / "config.toml").string());
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  ++starts_;
  channel_.reset();
  process_ = std::make_unique<Process>(argv, (dir() / ("ctrd-" + std::to_string(starts_) + ".log")).string());
}

std::shared_ptr<grpc::Channel> Daemon::channel() {
  if (!channel_) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    // Reconnect quickly while the daemon starts; gRPC's default first backoff is 1 s.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
    channel_ = grpc::CreateCustomChannel("unix:" + address(), grpc::InsecureChannelCredentials(), args);
  }
  return channel_;
}

bool Daemon::wait_ready(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::system_clock::now() + timeout;
  auto stub = containerd::services::version::v1::Version::NewStub(channel());
  while (std::chrono::system_clock::now() < deadline) {
    if (!process_->running()) return false;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::min(deadline, std::chrono::system_clock::now() + std::chrono::seconds(1)));
    ctx.set_wait_for_ready(true);  // blocks until the socket accepts, bounded by the deadline
    google::protobuf::Empty req;
    containerd::services::version::v1::VersionResponse resp;
    // Any answer from the server counts, even "unimplemented" when the version plugin is disabled.
    auto s = stub->Version(&ctx, req, &resp);
    if (s.ok() || s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return true;
  }
  return false;
}

std::optional<int> Daemon::stop(std::chrono::milliseconds timeout) {
  channel_.reset();
  process_->signal(SIGTERM);
  return process_->wait(timeout);
}

void Daemon::kill9() {
  channel_.reset();
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(30));
}

RunResult Daemon::ctr(const std::vector<std::string>& args, const std::string& ns) {
  std::vector<std::string> argv{ctr_binary(), "-a", address()};
  if (!ns.empty()) {
    argv.push_back("-n");
    argv.push_back(ns);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

// A port nothing listens on right now: the kernel's pick for port 0.
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The whole HTTP response to `GET path`, or "" when nothing answers.
std::string http_get(uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      pollfd p{fd, POLLIN, 0};
      while (::poll(&p, 1, 10000) > 0) {
        const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        out.append(buf, static_cast<size_t>(r));
      }
    }
  }
  ::close(fd);
  return out;
}

std::string body_of(const std::string& response) {
  const auto pos = response.find("\r\n\r\n");
  return pos == std::string::npos ? "" : response.substr(pos + 4);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!trim(line).empty()) out.push_back(trim(line));
  }
  return out;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path mkimage(const std::filesystem::path& dir, const std::string& file,
                              const std::vector<std::string>& args) {
  std::filesystem::path out = dir / file;
  std::vector<std::string> argv{"/usr/bin/python3", CTRD_MKIMAGE_PATH};
  size_t i = 0;
  for (; i < args.size() && args[i].rfind("--", 0) == 0; ++i) {
    argv.push_back(args[i]);
    if (args[i] != "--busybox" && i + 1 < args.size()) argv.push_back(args[++i]);
  }
  argv.push_back(out.string());
  argv.insert(argv.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  auto r = run(argv, std::chrono::seconds(300));
  EXPECT_EQ(r.exit_code, 0) << r.all();
  return out;
}

std::filesystem::path busybox_tar(const std::filesystem::path& dir, const std::string& format,
                                  const std::string& compression) {
  return mkimage(dir, "busybox-" + format + "-" + compression + ".tar",
                 {"--busybox", "--format", format, "--compression", compression});
}

}  // namespace ctrd::testing
