// services/tasks/criu.h: the answer to checkpoint and restore requests, which
// need CRIU on the host and are not implemented by ctrd yet. Shared by the
// service (restore at Create, and Checkpoint).
#pragma once

#include <string>

#include "errdefs/errdefs.h"
#include "os/process.h"

namespace ctrd::services::tasks {

// Always an error: FailedPrecondition when CRIU is not on PATH (the host
// could not do it at all, as containerd with runc would fail), otherwise
// NotImplemented. `what` names the operation: "checkpoint", "checkpoint restore".
inline errdefs::Status criu_unsupported(const std::string& what) {
  if (!os::look_path("criu").ok()) {
    return errdefs::FailedPrecondition(what + " needs CRIU, and criu was not found on PATH");
  }
  return errdefs::NotImplemented(what + " is not supported by ctrd yet");
}

}  // namespace ctrd::services::tasks
