// streaming/port_forward: Kubernetes' port forward protocol
// (portforward.k8s.io) on an upgraded SPDY session. For each forwarded
// connection the client opens two streams with the same `port` and
// `requestid` headers: `error` and `data`. Once both are there the server
// dials the port inside the pod and copies both ways; a failure to dial is
// written on the error stream. The session lasts until the client leaves.
#pragma once

#include <string>

#include "errdefs/errdefs.h"
#include "streaming/request_cache.h"
#include "streaming/runtime.h"
#include "streaming/spdy_session.h"

namespace ctrd::streaming {

inline constexpr std::string_view kPortForwardProtocol = "portforward.k8s.io";

// Ok when the client ended the session.
errdefs::Status serve_port_forward(SpdySession& session, const PortForwardRequest& request, Runtime& runtime);

}  // namespace ctrd::streaming
