// tests/support/daemon_process: a process that a test or a benchmark starts —
// a daemon (ctrd, containerd) or a long-running client beside it — and that
// must not outlive it. Only the pid spawned here is ever signalled, never a
// process found by name; the destructor kills and reaps whatever is still
// running, so a failed assertion or an exception leaves nothing behind. An
// exited child stays unreaped (a zombie) until wait() or stop(), so pid()
// cannot come to name some other process while its owner still reads
// /proc/<pid> or sends it signals.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ctrd::testing {

// What to run, and where its standard streams go.
struct ProcessCommand {
  std::vector<std::string> argv;                // argv[0] is a path: PATH is not searched
  std::filesystem::path log;                    // stdout, and stderr too unless err_log is set; truncated
  std::filesystem::path err_log;                // stderr, when it must stay apart from stdout
  std::filesystem::path input = "/dev/null";    // stdin
  std::optional<std::vector<std::string>> env;  // "NAME=value" entries; unset: this process's own
};

class DaemonProcess {
 public:
  // Starts `command`. Throws std::system_error, whose what() reads
  // "spawn <argv[0]>: <reason>", when it cannot be started.
  explicit DaemonProcess(const ProcessCommand& command);
  // `argv` with stdout and stderr both going to `log`.
  DaemonProcess(const std::vector<std::string>& argv, const std::filesystem::path& log);
  // SIGKILL and reap, if it has not been reaped yet.
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Taken just before the spawn: the start of a start-up measurement.
  std::chrono::steady_clock::time_point started_at() const { return started_at_; }

  // Whether it has not exited yet. Never reaps it, so pid() stays its own.
  bool running() const;
  // Sends `sig`, unless it has already been reaped.
  void signal(int sig);
  // Waits up to `timeout` for it to exit, and reaps it. Its exit code, or
  // 128 + the signal that ended it; nullopt when it was still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Sends `sig`, gives it `grace` to exit, then SIGKILL; reaps it. As wait(),
  // but nullopt only when even SIGKILL did not end it within 30 s.
  std::optional<int> stop(int sig, std::chrono::milliseconds grace);
  // After wait() or stop() returned an exit code: whether a signal ended it.
  bool killed_by_signal() const { return killed_by_signal_; }

 private:
  // A pidfd, closed with the object: readable once the process has exited.
  class PidFd {
   public:
    explicit PidFd(pid_t pid);
    ~PidFd();
    PidFd(const PidFd&) = delete;
    PidFd& operator=(const PidFd&) = delete;
    // -1 on kernels without pidfd_open (before 5.3).
    int get() const { return fd_; }

   private:
    int fd_ = -1;
  };

  // Whether it has exited within `timeout`, leaving it unreaped.
  bool wait_for_exit(std::chrono::milliseconds timeout) const;
  void reap();

  std::chrono::steady_clock::time_point started_at_;
  pid_t pid_ = -1;
  PidFd pidfd_;
  std::optional<int> exit_code_;  // set once reaped
  bool killed_by_signal_ = false;
};

}  // namespace ctrd::testing
