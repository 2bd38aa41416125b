#include "support/daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace ctrd::testing {
namespace {

using Clock = std::chrono::steady_clock;

// After SIGKILL only a process stuck in the kernel (say, on a hung mount)
// stays; past this it is left unreaped rather than hanging the caller.
constexpr std::chrono::seconds kKilledExitTimeout{30};

// Owns a posix_spawn file-actions object.
class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Owns a posix_spawn attributes object.
class SpawnAttributes {
 public:
  SpawnAttributes() { posix_spawnattr_init(&attr_); }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attr_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

// NULL-terminated pointers into `strings`, as exec wants them.
std::vector<char*> exec_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn(const ProcessCommand& command) {
  if (command.argv.empty()) throw std::system_error(EINVAL, std::generic_category(), "spawn: no argv");
  FileActions actions;
  posix_spawn_file_actions_addopen(actions.get(), 0, command.input.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(actions.get(), 1, command.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (command.err_log.empty()) {
    posix_spawn_file_actions_adddup2(actions.get(), 1, 2);
  } else {
    posix_spawn_file_actions_addopen(actions.get(), 2, command.err_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  // Callers block signals they take with sigwait (the benchmarks' interrupt
  // handling); the child must not inherit that and become unstoppable.
  SpawnAttributes attr;
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(attr.get(), &none);
  posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> argv = command.argv;
  std::vector<std::string> env = command.env.value_or(std::vector<std::string>{});
  std::vector<char*> argv_ptrs = exec_array(argv);
  std::vector<char*> env_ptrs = exec_array(env);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv_ptrs[0], actions.get(), attr.get(), argv_ptrs.data(),
                             command.env ? env_ptrs.data() : environ);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawn " + argv[0]);
  return pid;
}

}  // namespace

DaemonProcess::PidFd::PidFd(pid_t pid) : fd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}

DaemonProcess::PidFd::~PidFd() {
  if (fd_ >= 0) ::close(fd_);
}

DaemonProcess::DaemonProcess(const ProcessCommand& command)
    : started_at_(Clock::now()), pid_(spawn(command)), pidfd_(pid_) {}

DaemonProcess::DaemonProcess(const std::vector<std::string>& argv, const std::filesystem::path& log)
    : DaemonProcess(ProcessCommand{.argv = argv, .log = log}) {}

DaemonProcess::~DaemonProcess() {
  if (!exit_code_) stop(SIGKILL, kKilledExitTimeout);
}

bool DaemonProcess::running() const {
  if (exit_code_) return false;
  // WNOWAIT: only wait() and stop() reap, so the pid stays ours until then.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid != pid_;
}

void DaemonProcess::signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

std::optional<int> DaemonProcess::wait(std::chrono::milliseconds timeout) {
  if (!exit_code_ && wait_for_exit(timeout)) reap();
  return exit_code_;
}

std::optional<int> DaemonProcess::stop(int sig, std::chrono::milliseconds grace) {
  if (exit_code_) return exit_code_;
  ::kill(pid_, sig);
  if (!wait_for_exit(grace)) {
    ::kill(pid_, SIGKILL);
    if (!wait_for_exit(kKilledExitTimeout)) return std::nullopt;
  }
  reap();
  return exit_code_;
}

bool DaemonProcess::wait_for_exit(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  while (pidfd_.get() >= 0) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd exit_event{pidfd_.get(), POLLIN, 0};
    const int ready = ::poll(&exit_event, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready > 0) return true;
    if (ready == 0) return !running();
    if (errno != EINTR) break;  // an unusable pidfd: fall back to looking
  }
  // No pidfd to sleep on: look every 10 ms.
  while (running()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void DaemonProcess::reap() {
  int status = 0;
  pid_t reaped = -1;
  do {
    reaped = ::waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  if (reaped != pid_) {
    // Reaped elsewhere (SIGCHLD ignored, say): the pid is no longer ours to signal.
    exit_code_ = -1;
    return;
  }
  killed_by_signal_ = WIFSIGNALED(status);
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : killed_by_signal_ ? 128 + WTERMSIG(status) : -1;
}

}  // namespace ctrd::testing
