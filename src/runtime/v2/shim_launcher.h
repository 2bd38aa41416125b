// runtime/v2/shim_launcher: how the v2 runtime finds, starts, reaches and
// stops shims — a runtime name resolved to a trusted binary, the shim
// started in a task's bundle and asked to create the task there, a shim
// reconnected after a daemon restart, a shim told to delete and exit. It
// owns what every shim connection shares (ShimConnections).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "errdefs/errdefs.h"
#include "runtime/runtime.h"
#include "runtime/v2/bundle.h"
#include "runtime/v2/shim.h"

namespace ctrd::runtime::v2 {

// containerd's io.containerd.timeout.shim.* defaults.
inline constexpr auto kShimLoadTimeout = std::chrono::seconds(5);
inline constexpr auto kShimShutdownTimeout = std::chrono::seconds(3);

struct ShimLauncherOptions {
  std::string grpc_address;    // given to shims as -address
  std::string ttrpc_address;   // given to shims as TTRPC_ADDRESS (Events/Forward)
  std::string publish_binary;  // given to shims as -publish-binary (this executable)
  bool debug = false;          // shims log at debug level
  bool sched_core = false;     // SCHED_CORE=1 for shims (core scheduling)
};

class ShimLauncher {
 public:
  explicit ShimLauncher(ShimLauncherOptions options) : options_(std::move(options)) {}
  ShimLauncher(const ShimLauncher&) = delete;
  ShimLauncher& operator=(const ShimLauncher&) = delete;

  // As containerd: an absolute path as is; else the name's shim binary on
  // PATH, or next to the daemon's executable. Unlike containerd, a binary
  // that someone other than root could replace is refused.
  errdefs::StatusOr<std::string> resolve(const std::string& runtime);
  ShimBinary binary_at(const std::string& path) const;

  // Starts the shim in `bundle` and creates the task there (not started):
  // the shim and the task's pid. On failure the shim is shut down; the
  // bundle is the caller's.
  struct Started {
    std::shared_ptr<Shim> shim;
    uint32_t pid = 0;
  };
  errdefs::StatusOr<Started> start(const ShimBinary& binary, const Bundle& bundle,
                                   const CreateOptions& options, std::function<void()> on_lost);
  // Connects to the shim a previous run started in `bundle`.
  errdefs::StatusOr<std::shared_ptr<Shim>> reconnect(const Bundle& bundle, std::function<void()> on_lost);
  // Asks the shim to delete what it may still hold and to exit (each within
  // kShimShutdownTimeout); then drops the connection.
  static void shut_down(Shim& shim, const std::string& id);

 private:
  errdefs::StatusOr<std::string> find(const std::string& runtime);

  const ShimLauncherOptions options_;
  ShimConnections connections_;
  std::mutex mu_;
  std::map<std::string, std::string> paths_;  // binary name -> where it was found
};

// The shim binary for a runtime name: "io.containerd.runc.v2" ->
// "containerd-shim-runc-v2" (empty if the name has fewer than two parts).
std::string shim_binary_name(const std::string& runtime);

}  // namespace ctrd::runtime::v2
