#include "os/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "os/unique_fd.h"

extern char** environ;

namespace ctrd::os {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

errdefs::StatusOr<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errdefs::FromErrno(errno, "pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Owns the spawn attribute objects so every exit path destroys them.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string program_name(const std::vector<std::string>& argv) { return argv.empty() ? "" : argv[0]; }

}  // namespace

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

errdefs::StatusOr<std::string> look_path(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return errdefs::NotFound(name + ": " + std::strerror(errno));
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path
                                         : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = std::move(dir);
    candidate += '/';
    candidate += name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return errdefs::NotFound("executable file \"" + name + "\" not found in $PATH");
}

errdefs::StatusOr<pid_t> spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return errdefs::InvalidArgument("spawn: no program");
  CTRD_ASSIGN_OR_RETURN(std::string program, look_path(argv[0]));
  SpawnSetup setup;
  // Each descriptor goes to its slot in two steps (above every source and
  // slot, then down), so a source that is another's slot is never clobbered.
  int staging = static_cast<int>(options.fds.size());
  for (int fd : options.fds) staging = std::max(staging, fd + 1);
  for (size_t i = 0; i < options.fds.size(); ++i)
    posix_spawn_file_actions_adddup2(&setup.actions, options.fds[i], staging + static_cast<int>(i));
  for (size_t i = 0; i < options.fds.size(); ++i)
    posix_spawn_file_actions_adddup2(&setup.actions, staging + static_cast<int>(i), static_cast<int>(i));
  // Whatever a library opened without O_CLOEXEC stays with the daemon.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, static_cast<int>(options.fds.size()));
  if (!options.working_dir.empty())
    posix_spawn_file_actions_addchdir_np(&setup.actions, options.working_dir.c_str());

  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&setup.attr, 0);
  }
  posix_spawnattr_setflags(&setup.attr, flags);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);

  std::vector<std::string> env = options.env.empty() ? current_environment() : options.env;
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);
  pid_t pid = 0;
  if (const int rc =
          posix_spawn(&pid, program.c_str(), &setup.actions, &setup.attr, c_argv.data(), c_env.data());
      rc != 0) {
    return errdefs::FromErrno(rc, "start " + program);
  }
  return pid;
}

errdefs::StatusOr<RunResult> run(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return errdefs::InvalidArgument("run: no program");
  CTRD_ASSIGN_OR_RETURN(Pipe in, make_pipe());
  CTRD_ASSIGN_OR_RETURN(Pipe out, make_pipe());
  CTRD_ASSIGN_OR_RETURN(Pipe err, make_pipe());
  CTRD_ASSIGN_OR_RETURN(pid_t pid,
                        spawn(argv, SpawnOptions{.working_dir = options.working_dir,
                                                 .env = options.env,
                                                 .new_process_group = options.new_process_group,
                                                 .fds = {in.read.get(), out.write.get(), err.write.get()}}));
  in.read.reset();
  out.write.reset();
  err.write.reset();

  // A pidfd tells when the child exits even if a grandchild it left behind
  // (a shim's daemon half) still holds the output pipes.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  RunResult result;
  std::string_view pending_in =
      options.stdin_data ? std::string_view(*options.stdin_data) : std::string_view();
  if (pending_in.empty()) in.write.reset();
  for (auto* fd : {&in.write, &out.read, &err.read})
    if (fd->valid()) set_nonblocking(fd->get());

  const auto deadline =
      options.timeout ? std::optional(std::chrono::steady_clock::now() + *options.timeout) : std::nullopt;
  bool exited = false;
  bool timed_out = false;
  auto drain = [](UniqueFd& fd, std::string& into) {
    char buf[4096];
    while (fd.valid()) {
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0) {
        into.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) fd.reset();
      return;  // EAGAIN or an error
    }
  };
  while (!exited && (out.read.valid() || err.read.valid() || in.write.valid() || pidfd.valid())) {
    pollfd fds[4];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1, idx_pid = -1;
    if (in.write.valid()) {
      idx_in = n;
      fds[n++] = {in.write.get(), POLLOUT, 0};
    }
    if (out.read.valid()) {
      idx_out = n;
      fds[n++] = {out.read.get(), POLLIN, 0};
    }
    if (err.read.valid()) {
      idx_err = n;
      fds[n++] = {err.read.get(), POLLIN, 0};
    }
    if (pidfd.valid()) {
      idx_pid = n;
      fds[n++] = {pidfd.get(), POLLIN, 0};
    }
    int wait_ms = -1;
    if (deadline) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    const int ready = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (idx_in >= 0 && fds[idx_in].revents != 0) {
      const ssize_t w = ::write(in.write.get(), pending_in.data(), pending_in.size());
      if (w > 0) pending_in.remove_prefix(static_cast<size_t>(w));
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || pending_in.empty()) in.write.reset();
    }
    if (idx_out >= 0 && fds[idx_out].revents != 0) drain(out.read, result.out);
    if (idx_err >= 0 && fds[idx_err].revents != 0) drain(err.read, result.err);
    if (idx_pid >= 0 && fds[idx_pid].revents != 0) exited = true;
  }
  if (timed_out) ::kill(pid, SIGKILL);
  // What the child wrote before it exited is in the pipes already.
  drain(out.read, result.out);
  drain(err.read, result.err);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return errdefs::DeadlineExceeded(program_name(argv) + " did not finish within " +
                                     std::to_string(options.timeout->count()) + "ms");
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace ctrd::os
