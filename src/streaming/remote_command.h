// streaming/remote_command: Kubernetes' remote command protocols (exec and
// attach) on an upgraded SPDY session: the client opens an error stream and
// the stdio streams it asked for (and, from v3 with a tty, a resize stream
// carrying {"Width":w,"Height":h} lines); the process's output goes out until
// it ends, then the error stream carries the outcome — from v4 a JSON
// metav1.Status with the exit code, before that an error message.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "streaming/runtime.h"
#include "streaming/spdy_session.h"

namespace ctrd::streaming {

inline constexpr std::string_view kRemoteCommandV4 = "v4.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV3 = "v3.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV2 = "v2.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV1 = "channel.k8s.io";

// The remote command protocols this server speaks.
const std::vector<std::string>& remote_command_protocols();

// What the client asked for, as the request recorded it.
struct RemoteCommandOptions {
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

// The error stream's content for a process that exited with `exit_code`
// (nullopt: `error` says why there is no process) under `protocol`.
std::string remote_command_status(std::string_view protocol, std::optional<int> exit_code,
                                  const std::string& error);

// Serves one exec or attach: waits (30 s at most) for the client's streams,
// starts the process with `start`, streams until it has exited and its output
// is out, then reports the outcome and closes the session. An error when the
// client left or never opened its streams (the process, if any, is let go).
errdefs::Status serve_remote_command(
    SpdySession& session, std::string_view protocol, const RemoteCommandOptions& options,
    const std::function<errdefs::StatusOr<std::unique_ptr<StreamProcess>>()>& start);

}  // namespace ctrd::streaming
