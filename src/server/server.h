// server: the daemon itself. Orders the registered plugins by dependency,
// initializes each with its InitContext and decoded config, keeps the results
// in a plugin::Set, and serves what the instances export: gRPC on the unix
// socket (and on TCP, with TLS or mutual TLS, when configured) and the ttRPC
// socket. With `[metrics] address` set it also serves Prometheus metrics over
// HTTP (gRPC call counts, process stats, plugin init times and whatever
// collectors modules add to metrics::Registry::global()). Shutdown stops
// accepting, lets in-flight calls finish (kShutdownGrace, then they are
// cancelled), closes plugins in reverse init order and removes the sockets;
// if that has not completed within kShutdownLimit, it logs the calls still in
// flight and the process exits anyway. Shims and their containers live on.
#pragma once

#include <chrono>
#include <functional>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "errdefs/errdefs.h"
#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "ttrpc/ttrpc.h"

namespace grpc {
class Server;
class ServerBuilder;
}  // namespace grpc

namespace ctrd::events {
class Exchange;
}

namespace ctrd::metrics {
class HttpServer;
}
namespace ctrd::executor {
class WorkerPool;
}
namespace ctrd::os {
class UnixListener;
}

namespace ctrd::server {

// How long one plugin's init took, and how it ended.
struct PluginInit {
  std::string type;
  std::string id;
  std::string status;  // "ok", "skip" or "error", as plugin::Plugin::status()
  double seconds = 0;  // 0 when init was never called (unmet dependency, bad config)
};

// A call still running this long after shutdown began is cancelled.
inline constexpr std::chrono::seconds kShutdownGrace{5};
// The process is gone this long after shutdown began, drained or not.
inline constexpr std::chrono::seconds kShutdownLimit{10};

class CallTracker;

class Server {
 public:
  // Initializes every enabled plugin. Fails when a required plugin (config
  // `required_plugins`) did not come up, naming it and why.
  static errdefs::StatusOr<std::unique_ptr<Server>> create(const config::LoadedConfig& config,
                                                           const plugin::Registry& registry);
  ~Server();

  // Starts the listeners and blocks until shutdown() has completed.
  // `on_serving` runs once every socket accepts calls (e.g. to tell the
  // service manager), `on_stopping` when shutdown begins.
  errdefs::Status serve(const std::function<void()>& on_serving = {},
                        const std::function<void()>& on_stopping = {});
  // Thread-safe; may be called before or during serve().
  void shutdown();

  const plugin::Set& plugins() const { return *plugins_; }
  // Every plugin that was attempted, in init order.
  const std::vector<PluginInit>& plugin_inits() const { return plugin_inits_; }
  // The registry the metrics endpoint serves.
  const std::shared_ptr<metrics::Registry>& metrics() const { return metrics_; }

 private:
  Server(const config::LoadedConfig& config, std::shared_ptr<events::Exchange> events);
  errdefs::Status init_plugins(const plugin::Registry& registry);
  errdefs::Status start_listeners();
  // Installs the call tracker and, when metrics are configured, the metrics interceptor.
  void prepare_interceptors(grpc::ServerBuilder& builder);
  // Logs the calls still in flight and ends the process (the watchdog's last resort).
  [[noreturn]] void exit_undrained();
  errdefs::Status start_metrics();
  void stop_metrics();
  void close_plugins();

  config::LoadedConfig config_;
  std::shared_ptr<events::Exchange> events_;
  std::shared_ptr<plugin::Set> plugins_;
  std::unique_ptr<grpc::Server> grpc_;
  std::shared_ptr<CallTracker> calls_;
  std::shared_ptr<executor::WorkerPool> blocking_;  // stopped after grpc_: its calls run jobs here
  std::unique_ptr<os::UnixListener> ttrpc_;
  std::unique_ptr<ttrpc::Server> ttrpc_server_;
  std::vector<PluginInit> plugin_inits_;
  std::shared_ptr<metrics::Registry> metrics_ = metrics::Registry::global();
  std::vector<metrics::CollectorHandle> metric_collectors_;
  std::unique_ptr<metrics::HttpServer> metrics_http_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_requested_ = false;
  bool serving_ = false;
};

}  // namespace ctrd::server
