// cmd/ctrd/publish: `ctrd publish --namespace NS --topic T < event`, what a
// shim runs (its -publish-binary) to hand an event to the daemon: the event
// arrives on stdin as a serialized google.protobuf.Any and is sent with the
// events service's Publish over the daemon's gRPC socket, as `containerd
// publish` does.
#pragma once

#include <string>

namespace ctrd::cmd {

// Returns the process exit code; errors are printed to stderr.
int publish_event(const std::string& address, const std::string& ns, const std::string& topic);

}  // namespace ctrd::cmd
