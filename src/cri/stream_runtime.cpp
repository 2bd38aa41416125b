#include "cri/stream_runtime.h"

#include "cri/container_service.h"
#include "cri/sandbox_service.h"
#include "os/netns.h"

namespace ctrd::cri {

errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> StreamRuntime::exec(
    const streaming::ExecRequest& request) {
  return containers_.start_stream_exec(request);
}

errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> StreamRuntime::attach(
    const streaming::AttachRequest& request) {
  return containers_.attach_stream(request);
}

errdefs::StatusOr<os::UniqueFd> StreamRuntime::port_forward(const std::string& pod_sandbox_id, int32_t port) {
  CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, sandboxes_.store().get(pod_sandbox_id));
  if (sandbox.state != SandboxState::kReady)
    return errdefs::FailedPrecondition("pod sandbox " + errdefs::quoted(sandbox.metadata.id) +
                                       " is not ready");
  if (port <= 0 || port > 65535) return errdefs::InvalidArgument("invalid port " + std::to_string(port));
  const auto p = static_cast<uint16_t>(port);
  if (sandbox.metadata.netns_path.empty()) return os::connect_host_loopback(p);
  return os::NetNs::at(sandbox.metadata.netns_path).connect_loopback(p);
}

}  // namespace ctrd::cri
