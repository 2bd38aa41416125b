// bench/daemon: a daemon under measurement — ctrd or containerd started on its
// own temporary root, state and socket, stopped by pid and its root removed
// when the object goes away, however the measurement ended.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "support/daemon_process.h"

namespace ctrd::bench {

struct Target {
  std::string name;
  std::vector<std::string> (*argv)(const std::string& bin, const std::filesystem::path& dir);
  std::string bin;
  std::string extra_config;  // top-level TOML keys for the daemon's config file
};

std::vector<std::string> ctrd_argv(const std::string& bin, const std::filesystem::path& dir);
std::vector<std::string> containerd_argv(const std::string& bin, const std::filesystem::path& dir);

class Daemon {
 public:
  // Starts the target; error() says why when it could not.
  explicit Daemon(const Target& t);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Stops the daemon and removes its root, once; safe from another thread.
  void shutdown();

  // -1 when it could not be started.
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  const std::string& error() const { return error_; }
  std::string socket_path() const { return (dir_ / "s.sock").string(); }
  std::string address() const { return "unix:" + socket_path(); }
  // When the daemon was exec'd.
  std::chrono::steady_clock::time_point started_at() const {
    return process_ ? process_->started_at() : std::chrono::steady_clock::time_point{};
  }

  // Polls Version until the daemon answers; false after 60 s or an early exit.
  bool wait_ready();

 private:
  std::filesystem::path dir_;
  // Kept until destruction, even once stopped: pid() may be read from
  // another thread while shutdown() runs.
  std::optional<testing::DaemonProcess> process_;
  std::string error_;
  // Guards process_'s state between shutdown() (possibly on the signal
  // thread) and wait_ready().
  std::mutex mu_;
  bool shut_down_ = false;
};

// A benchmark's "--name value" options, each bound to a variable that holds
// its default.
class Flags {
 public:
  Flags& add(const std::string& name, int* value);
  Flags& add(const std::string& name, size_t* value);
  Flags& add(const std::string& name, std::string* value);
  // False, after saying why on stderr, for an unknown name, a missing value
  // or a number that is not one.
  bool parse(int argc, char** argv) const;

 private:
  std::map<std::string, std::variant<int*, size_t*, std::string*>> flags_;
};

// The directories of this machine whose contents make the large benchmark
// image's four layers (about 320 MB and 7,500 files): present wherever the
// project builds.
inline constexpr const char* kImageLayers = "/usr/lib/gcc,/usr/lib/python3,/usr/include/c++,/usr/share/perl";

// A TCP port on 127.0.0.1 that nothing listens on now.
int free_loopback_port();

double median(std::vector<double> v);

struct Cpu {
  double user = 0;  // utime: the daemon's own code
  double sys = 0;   // stime: kernel work on its behalf
  double total() const { return user + sys; }
};

// utime and stime of the whole process, in seconds.
std::optional<Cpu> cpu_seconds(pid_t pid);
// Peak resident set (VmHWM) of the process, in MiB; 0 when unreadable.
double peak_rss_mib(pid_t pid);

// Resident set (VmRSS) of the process now, in MiB; 0 when unreadable.
double rss_mib(pid_t pid);

// Runs argv (looked up on PATH) with stdout and stderr appended to `log`;
// returns the exit status, -1 when it could not run or was killed.
int run_command(const std::vector<std::string>& argv, const std::string& log);

// Registers a daemon as the one an interrupt must stop, for its lifetime.
class CurrentDaemon {
 public:
  explicit CurrentDaemon(Daemon& d);
  ~CurrentDaemon();
  CurrentDaemon(const CurrentDaemon&) = delete;
  CurrentDaemon& operator=(const CurrentDaemon&) = delete;
};

// Call first in main, before any thread exists: SIGINT, SIGTERM and SIGHUP
// then stop the current daemon (removing its root) and exit.
void stop_current_daemon_on_signals();

}  // namespace ctrd::bench
