// cmd/ctrd/systemd: the service manager's readiness protocol (sd_notify):
// a datagram to $NOTIFY_SOCKET. Written here rather than linking libsystemd,
// which would add a shared library to every start for two messages.
#pragma once

#include <string_view>

namespace ctrd::cmd {

// Sends `state` ("READY=1", "STOPPING=1", ...) when NOTIFY_SOCKET is set;
// false when it is set and the message could not be sent.
bool notify_service_manager(std::string_view state);

}  // namespace ctrd::cmd
