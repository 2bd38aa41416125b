#include "cmd/ctrd/serve.h"

#include <signal.h>

#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "content/local/store.h"
#include "log/log.h"
#include "proxy/server.h"
#include "snapshots/native/native.h"
#include "snapshots/overlay/overlay.h"

namespace ctrd::cmd {
namespace {

constexpr const char* kUsage = R"(Usage:
  ctrd serve-snapshotter [--snapshotter overlayfs|native] --root DIR --address SOCK
  ctrd serve-content --root DIR --address SOCK

Serves one snapshotter or content store on a unix socket with containerd's
gRPC API (containerd.services.snapshots.v1 / content.v1), for a daemon's
[proxy_plugins]. Options:
      --snapshotter NAME   overlayfs (default) or native
      --root DIR           where the snapshots or blobs are kept
  -a, --address SOCK       socket to serve on
  -l, --log-level LEVEL    trace, debug, info, warn, error or fatal (default info)
)";

// Flags as "--name value" or "--name=value"; false with `error` set otherwise.
bool parse_flags(int argc, char** argv, std::map<std::string, std::string>& flags, std::string& error) {
  const std::map<std::string, std::string> aliases{{"-a", "--address"}, {"-l", "--log-level"}};
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      flags["--help"] = "";
      continue;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (auto a = aliases.find(arg); a != aliases.end()) arg = a->second;
    if (arg != "--snapshotter" && arg != "--root" && arg != "--address" && arg != "--log-level") {
      error = "unknown flag " + arg;
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        error = "flag " + arg + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    flags[arg] = value;
  }
  return true;
}

errdefs::StatusOr<std::unique_ptr<grpc::Service>> open_service(const std::string& command,
                                                               const std::string& snapshotter,
                                                               const std::string& root) {
  if (command == "serve-content") {
    CTRD_ASSIGN_OR_RETURN(auto store, content::local::open_store(root));
    return proxy::content_service(std::move(store));
  }
  if (snapshotter == "native") {
    CTRD_ASSIGN_OR_RETURN(auto sn, snapshots::native::NativeSnapshotter::open(root));
    CTRD_RETURN_IF_ERROR(sn->cleanup());
    return proxy::snapshots_service(std::move(sn));
  }
  if (snapshotter == "overlayfs") {
    CTRD_RETURN_IF_ERROR(snapshots::overlay::check_supported(root));
    CTRD_ASSIGN_OR_RETURN(auto sn, snapshots::overlay::OverlaySnapshotter::open(root));
    CTRD_RETURN_IF_ERROR(sn->cleanup());
    return proxy::snapshots_service(std::move(sn));
  }
  return errdefs::InvalidArgument("unknown snapshotter \"" + snapshotter + "\" (want overlayfs or native)");
}

}  // namespace

bool is_serve_command(int argc, char** argv) {
  return argc > 1 &&
         (std::strcmp(argv[1], "serve-snapshotter") == 0 || std::strcmp(argv[1], "serve-content") == 0);
}

int serve_main(int argc, char** argv) {
  const std::string command = argv[1];
  std::map<std::string, std::string> flags;
  std::string error;
  if (!parse_flags(argc, argv, flags, error)) {
    std::cerr << "ctrd " << command << ": " << error << "\n" << kUsage;
    return 2;
  }
  if (flags.contains("--help")) {
    std::cout << kUsage;
    return 0;
  }
  if (flags["--root"].empty() || flags["--address"].empty()) {
    std::cerr << "ctrd " << command << ": --root and --address are required\n" << kUsage;
    return 2;
  }
  if (command == "serve-content" && flags.contains("--snapshotter")) {
    std::cerr << "ctrd serve-content: --snapshotter does not apply\n";
    return 2;
  }
  const std::string snapshotter = flags.contains("--snapshotter") ? flags["--snapshotter"] : "overlayfs";
  if (auto s = log::set_level(flags.contains("--log-level") ? flags["--log-level"] : "info"); !s.ok()) {
    std::cerr << "ctrd " << command << ": " << s.message() << "\n";
    return 2;
  }

  // Signals go to sigwait below; gRPC's threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto service = open_service(command, snapshotter, flags["--root"]);
  if (!service.ok()) {
    log::fatal("ctrd " + command + ": " + service.status().message());
    return 1;
  }
  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::move(*service));
  auto server = proxy::SocketServer::start(flags["--address"], std::move(services));
  if (!server.ok()) {
    log::fatal("ctrd " + command + ": " + server.status().message());
    return 1;
  }
  const std::string what = command == "serve-content" ? "content" : snapshotter;
  log::info("serving", {{"store", what}, {"root", flags["--root"]}, {"address", (*server)->path()}});
  int sig = 0;
  sigwait(&signals, &sig);
  log::info("received signal, stopping", {{"signal", strsignal(sig)}});
  (*server)->shutdown();
  return 0;
}

}  // namespace ctrd::cmd
