// Integration test harness: a real ctrd on a temporary root, driven with the
// real `ctr` binary (and gRPC where ctr has no command). Everything a test
// starts is stopped and removed by destructors, on failure too.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/daemon_process.h"
#include "support/temp_dir.h"

namespace ctrd::testing {

// Text helpers for command output and files.
std::string trim(std::string s);                              // trailing spaces and newlines
std::vector<std::string> lines_of(const std::string& text);   // trimmed, non-empty
std::vector<std::string> fields_of(const std::string& line);  // split on whitespace
std::string read_text(const std::filesystem::path& p);        // "" when unreadable

// An image tarball made by the shared testdata tool (mkimage.py): `args` are
// its options first, then the image name and layer directories.
std::filesystem::path mkimage(const std::filesystem::path& dir, const std::string& file,
                              const std::vector<std::string>& args);
// docker.io/library/busybox:latest from Debian's busybox-static.
std::filesystem::path busybox_tar(const std::filesystem::path& dir, const std::string& format = "oci",
                                  const std::string& compression = "gzip");

struct RunResult {
  int exit_code = -1;  // -1: killed after the timeout
  std::string out;
  std::string err;
  std::string all() const { return out + err; }
};

// Runs argv to completion (bounded by `timeout`), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::string& stdin_file = "");

// A child process with stdout and stderr in one log: ctrd itself, or a client
// such as `ctr events` beside it; killed with SIGKILL and reaped on destruction
// if still running.
using Process = DaemonProcess;

struct DaemonOptions {
  std::string config;  // TOML written to <tmp>/config.toml and passed with --config
  std::vector<std::string> extra_args;
  bool start = true;       // false: the test calls start() itself
  bool wait_ready = true;  // wait for the first answered call in the constructor
};

// Content written without a lease or a reference is garbage, as in
// containerd. Tests of the content store itself (which ctr writes without a
// lease) keep the collector from running: no collection at start-up, none
// triggered by mutations or deletions.
DaemonOptions without_gc();

// ctrd on its own temporary root, state and socket.
class Daemon {
 public:
  explicit Daemon(DaemonOptions options = {});
  ~Daemon();

  const std::filesystem::path& dir() const { return tmp_.path(); }
  std::string root() const { return (dir() / "root").string(); }
  std::string state() const { return (dir() / "state").string(); }
  std::string address() const { return (dir() / "ctrd.sock").string(); }
  std::string log() const;
  Process& process() { return *process_; }

  // Starts ctrd (again, after stop()).
  void start();
  // Waits until the Version call is answered; false on timeout or early exit.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM and wait; returns the exit code.
  std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void kill9();

  // `ctr -a <socket> [-n ns] args...`.
  RunResult ctr(const std::vector<std::string>& args, const std::string& ns = "");
  std::shared_ptr<grpc::Channel> channel();

 private:
  DaemonOptions options_;
  TempDir tmp_;
  std::unique_ptr<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
  int starts_ = 0;
};

// Waits (event-driven, via inotify) until `path` contains every one of
// `needles`, or `timeout` passes; returns the file's final content.
std::string wait_for_content(const std::filesystem::path& path, const std::vector<std::string>& needles,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Lowercase hex of `n` bytes, and "sha256:<hex>" of `data`.
std::string hex(const unsigned char* bytes, size_t n);
std::string sha256_digest(std::string_view data);

// A loopback TCP port nothing listens on right now (the kernel's pick for port 0).
uint16_t free_port();
// The whole HTTP response to `GET path` on a loopback port, or "" when nothing answers.
std::string http_get(uint16_t port, const std::string& path);
// An HTTP response's body.
std::string body_of(const std::string& response);

// Path of the ctrd binary under test and of ctr.
std::string ctrd_binary();
std::string ctr_binary();
// A gRPC context carrying a namespace (and lease, when given).
std::unique_ptr<grpc::ClientContext> context_for(const std::string& ns, const std::string& lease = "");

// How a test registry is reached: plain HTTP by default; TLS with a
// certificate, and htpasswd Basic auth with one user.
struct RegistryOptions {
  std::filesystem::path tls_cert;  // empty: plain HTTP
  std::filesystem::path tls_key;
  std::string username;  // empty: no auth
  std::string password;
};

// Debian's docker-registry on a free loopback port, serving from `dir`;
// stopped with the object.
class Registry {
 public:
  explicit Registry(const std::filesystem::path& dir, RegistryOptions options = {});
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // Pushes an OCI archive with skopeo (with the registry's credentials),
  // retrying (bounded) while the registry is still starting.
  RunResult push(const std::filesystem::path& oci_tar, const std::string& repo);

 private:
  void wait_for_listener();
  std::filesystem::path dir_;
  RegistryOptions options_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

// A certificate authority made with openssl under `dir`, and a server
// certificate it signed for 127.0.0.1: ca.crt, server.crt, server.key.
struct TestCa {
  std::filesystem::path ca_cert, server_cert, server_key;
};
TestCa make_test_ca(const std::filesystem::path& dir);

}  // namespace ctrd::testing
