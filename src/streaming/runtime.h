// streaming/runtime: what the streaming server needs from the container
// runtime behind it (the CRI plugin): a process to stream an exec or attach
// to, and a connection to a port inside a pod.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"
#include "streaming/request_cache.h"

namespace ctrd::streaming {

// A process whose stdio is streamed. Destroying it lets go of the process:
// an exec still running is killed (its client is gone) and its fifos removed.
class StreamProcess {
 public:
  virtual ~StreamProcess() = default;

  // The write end of its stdin and the read ends of its output; invalid
  // where the request did not ask for one (with a tty, stdout carries both).
  os::UniqueFd stdin_fd, stdout_fd, stderr_fd;

  virtual errdefs::Status resize(uint16_t width, uint16_t height) = 0;
  // The client's stdin ended (after stdin_fd was closed).
  virtual void stdin_closed() {}
  // Readable once the process has exited.
  virtual int exit_fd() const = 0;
  // Its exit code once it has exited.
  virtual std::optional<int> exit_code() const = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual errdefs::StatusOr<std::unique_ptr<StreamProcess>> exec(const ExecRequest& request) = 0;
  virtual errdefs::StatusOr<std::unique_ptr<StreamProcess>> attach(const AttachRequest& request) = 0;
  // A connected stream socket to localhost:`port` in the pod's network namespace.
  virtual errdefs::StatusOr<os::UniqueFd> port_forward(const std::string& pod_sandbox_id, int32_t port) = 0;
};

}  // namespace ctrd::streaming
