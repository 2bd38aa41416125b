// Test helpers: a temporary directory removed with everything under it, and
// a proxy front end served on a socket inside it, both undone on failure too.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "proxy/channel.h"
#include "proxy/server.h"

#include "support/temp_dir.h"

namespace ctrd::proxy::testing {

using TempDir = ::ctrd::testing::TempDir;

// Serves what make() returns on `socket`; restartable to test reconnection.
template <typename Backend>
class Served {
 public:
  using Make = std::unique_ptr<grpc::Service> (*)(std::shared_ptr<Backend>);
  Served(std::shared_ptr<Backend> backend, Make make, std::string socket)
      : backend_(std::move(backend)), make_(make), socket_(std::move(socket)) {}

  errdefs::Status start() {
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(make_(backend_));
    CTRD_ASSIGN_OR_RETURN(server_, SocketServer::start(socket_, std::move(services)));
    return errdefs::Status::Ok();
  }
  void stop() { server_.reset(); }

 private:
  std::shared_ptr<Backend> backend_;
  Make make_;
  std::string socket_;
  std::unique_ptr<SocketServer> server_;
};

// After the plugin is back: the first call may still see the channel's
// reconnect backoff; it resets it, and the channel connects by itself.
inline void await_reconnect(const Connection& conn) {
  conn.channel()->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

}  // namespace ctrd::proxy::testing
