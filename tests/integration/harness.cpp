#include "harness.h"

#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <sstream>

#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ctrd::testing {
namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::string& stdin_file) {
  TempDir tmp;
  const std::string out = (tmp.path() / "out").string();
  const std::string err = (tmp.path() / "err").string();
  RunResult result;
  {
    DaemonProcess command(
        {.argv = argv, .log = out, .err_log = err, .input = stdin_file.empty() ? "/dev/null" : stdin_file});
    auto code = command.wait(timeout);
    if (!code) code = command.stop(SIGKILL, std::chrono::seconds(30));
    result.exit_code = code && !command.killed_by_signal() ? *code : -1;
  }
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

Registry::Registry(const std::filesystem::path& dir, RegistryOptions options)
    : dir_(dir), options_(std::move(options)) {
  port_ = free_port();
  std::filesystem::create_directories(dir_ / "storage");
  std::ofstream config(dir_ / "registry.yml");
  config << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
         << "    rootdirectory: " << (dir_ / "storage").string() << "\nhttp:\n  addr: 127.0.0.1:" << port_
         << "\n";
  if (!options_.tls_cert.empty())
    config << "  tls:\n    certificate: " << options_.tls_cert.string()
           << "\n    key: " << options_.tls_key.string() << "\n";
  if (!options_.username.empty()) {
    // docker-registry reads bcrypt hashes only; python3's crypt makes them ($2b$).
    auto hashed = run({"/usr/bin/python3", "-W", "ignore", "-c",
                       "import crypt, sys; print(sys.argv[1] + ':' + crypt.crypt(sys.argv[2], "
                       "crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                       options_.username, options_.password});
    std::ofstream(dir_ / "htpasswd") << hashed.out;
    config << "auth:\n  htpasswd:\n    realm: ctrd-test\n    path: " << (dir_ / "htpasswd").string() << "\n";
  }
  config.close();
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/docker-registry", "serve", (dir_ / "registry.yml").string()},
      (dir_ / "registry.log").string());
}

RunResult Registry::push(const std::filesystem::path& oci_tar, const std::string& repo) {
  RunResult r;
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::vector<std::string> argv{"/usr/bin/skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false"};
    if (!options_.username.empty())
      argv.push_back("--dest-creds=" + options_.username + ":" + options_.password);
    argv.push_back("oci-archive:" + oci_tar.string());
    argv.push_back("docker://" + host() + "/" + repo);
    r = run(argv);
    if (r.exit_code == 0 || r.all().find("connection refused") == std::string::npos) break;
    wait_for_listener();
  }
  return r;
}

void Registry::wait_for_listener() {
  // Bounded: returns as soon as the port accepts, or after ~100 ms.
  for (int i = 0; i < 100; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return;
    ::usleep(1000);
  }
}

TestCa make_test_ca(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const TestCa ca{dir / "ca.crt", dir / "server.crt", dir / "server.key"};
  const std::string key = (dir / "ca.key").string(), csr = (dir / "server.csr").string();
  std::ofstream(dir / "san.cnf") << "subjectAltName = IP:127.0.0.1\n";
  const std::vector<std::vector<std::string>> steps{
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=ctrd test CA", "-keyout", key, "-out", ca.ca_cert.string()},
      {"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
       ca.server_key.string(), "-out", csr},
      {"/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", ca.ca_cert.string(), "-CAkey", key,
       "-CAcreateserial", "-days", "2", "-extfile", (dir / "san.cnf").string(), "-out",
       ca.server_cert.string()}};
  for (const auto& step : steps) {
    auto r = run(step);
    if (r.exit_code != 0) ADD_FAILURE() << "openssl failed: " << r.all();
  }
  return ca;
}

}  // namespace ctrd::testing
