// cmd/ctrd/serve: `ctrd serve-snapshotter` and `ctrd serve-content` — one
// built-in snapshotter (raw: keys as given, no namespaces) or content store
// served alone on a unix socket with containerd's gRPC API, for a daemon to
// use through `[proxy_plugins]`. SIGINT or SIGTERM stops it cleanly.
#pragma once

namespace ctrd::cmd {

// Whether argv names one of the serve commands.
bool is_serve_command(int argc, char** argv);
// Runs the serve command argv names; returns the process exit code.
int serve_main(int argc, char** argv);

}  // namespace ctrd::cmd
