// cri/stream_runtime: what the streaming server streams to, from the CRI
// plugin's containers and pods: an exec's stdio, a container's stdio
// (attach), and a connection to a port inside a pod's network namespace.
#pragma once

#include <memory>

#include "streaming/runtime.h"

namespace ctrd::cri {

class ContainerService;
class SandboxService;

class StreamRuntime : public streaming::Runtime {
 public:
  // The services outlive the streaming server (CriService stops it first).
  StreamRuntime(ContainerService& containers, SandboxService& sandboxes)
      : containers_(containers), sandboxes_(sandboxes) {}

  errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> exec(
      const streaming::ExecRequest& request) override;
  errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> attach(
      const streaming::AttachRequest& request) override;
  errdefs::StatusOr<os::UniqueFd> port_forward(const std::string& pod_sandbox_id, int32_t port) override;

 private:
  ContainerService& containers_;
  SandboxService& sandboxes_;
};

}  // namespace ctrd::cri
