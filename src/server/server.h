// server: the daemon itself. Orders the registered plugins by dependency,
// initializes each with its InitContext and decoded config, keeps the results
// in a plugin::Set, and serves what the instances export: gRPC on the unix
// socket (and on TCP, with TLS or mutual TLS, when configured) and the ttRPC
// socket. Shutdown stops accepting, lets in-flight calls finish, closes plugins
// in reverse init order and removes the sockets.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "errdefs/errdefs.h"
#include "plugin/plugin.h"
#include "ttrpc/ttrpc.h"

namespace grpc {
class Server;
}

namespace ctrd::events {
class Exchange;
}

namespace ctrd::server {

class UnixListener;

class Server {
 public:
  // Initializes every enabled plugin. Fails when a required plugin (config
  // `required_plugins`) did not come up, naming it and why.
  static errdefs::StatusOr<std::unique_ptr<Server>> create(const config::LoadedConfig& config,
                                                           const plugin::Registry& registry);
  ~Server();

  // Starts the listeners and blocks until shutdown() has completed.
  errdefs::Status serve();
  // Thread-safe; may be called before or during serve().
  void shutdown();

  const plugin::Set& plugins() const { return *plugins_; }

 private:
  Server(const config::LoadedConfig& config, std::shared_ptr<events::Exchange> events);
  errdefs::Status init_plugins(const plugin::Registry& registry);
  errdefs::Status start_listeners();
  void close_plugins();

  config::LoadedConfig config_;
  std::shared_ptr<events::Exchange> events_;
  std::shared_ptr<plugin::Set> plugins_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<UnixListener> ttrpc_;
  std::unique_ptr<ttrpc::Server> ttrpc_server_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_requested_ = false;
  bool serving_ = false;
};

}  // namespace ctrd::server
