// os/process: running a helper program to completion — a shim's `start` or
// `delete` action — with its working directory, environment and stdin given,
// and its stdout and stderr captured. posix_spawn, not fork: the daemon's
// address space is large and its threads many.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::os {

struct RunOptions {
  std::string working_dir;                // empty: the caller's
  std::vector<std::string> env;           // "K=V"; replaces the environment when set
  std::optional<std::string> stdin_data;  // written to the child's stdin, then closed
  bool new_process_group = false;         // so a signal to the daemon's group spares it
  // The child is killed (SIGKILL) once this passes; the result is DeadlineExceeded.
  std::optional<std::chrono::milliseconds> timeout;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, if any
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
};

struct SpawnOptions {
  std::string working_dir;       // empty: the caller's
  std::vector<std::string> env;  // "K=V"; replaces the environment when set
  bool new_process_group = false;
  // The child's descriptors 0, 1, 2, 3, ... in order (each dup'ed from the
  // parent's descriptor given); nothing else is inherited.
  std::vector<int> fds;
};

// Starts argv[0] (an absolute path, or a name looked up on PATH) with no
// signals blocked or ignored; the caller waits for the returned pid.
errdefs::StatusOr<pid_t> spawn(const std::vector<std::string>& argv, const SpawnOptions& options);

// Runs argv[0] (an absolute path, or a name looked up on PATH) to completion.
// The child starts with no signals blocked or ignored, whatever the daemon's
// threads block, and inherits only stdin, stdout and stderr.
errdefs::StatusOr<RunResult> run(const std::vector<std::string>& argv, const RunOptions& options = {});

// The environment of this process, as "K=V" strings.
std::vector<std::string> current_environment();

// The absolute path of `name` on PATH, or NotFound.
errdefs::StatusOr<std::string> look_path(const std::string& name);

}  // namespace ctrd::os
