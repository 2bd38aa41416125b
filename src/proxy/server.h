// proxy/server: the other side of a proxy plugin — gRPC front ends serving
// one snapshotter or content store as is (no namespaces: keys and digests are
// the backend's own), and a server holding them on a unix socket. This is
// what `ctrd serve-snapshotter` and `ctrd serve-content` run.
#pragma once

#include <grpcpp/impl/service_type.h>
#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "snapshots/snapshotter.h"

namespace ctrd::proxy {

// containerd.services.snapshots.v1.Snapshots over `snapshotter`; the
// request's `snapshotter` field is ignored.
std::unique_ptr<grpc::Service> snapshots_service(std::shared_ptr<snapshots::Snapshotter> snapshotter);

// containerd.services.content.v1.Content over `store`.
std::unique_ptr<grpc::Service> content_service(std::shared_ptr<content::Store> store);

// A gRPC server on one unix socket. The socket is created (replacing a stale
// one; refused when another server answers there) and removed on shutdown.
class SocketServer {
 public:
  static errdefs::StatusOr<std::unique_ptr<SocketServer>> start(
      const std::string& address, std::vector<std::unique_ptr<grpc::Service>> services);
  ~SocketServer();
  SocketServer(const SocketServer&) = delete;
  SocketServer& operator=(const SocketServer&) = delete;

  const std::string& path() const { return path_; }
  // Stops accepting, lets calls in flight finish (cancelling streams still
  // open after a grace period) and removes the socket. Idempotent.
  void shutdown();

 private:
  SocketServer(std::string path, std::vector<std::unique_ptr<grpc::Service>> services,
               std::unique_ptr<grpc::Server> server);

  std::string path_;
  std::vector<std::unique_ptr<grpc::Service>> services_;  // outlive server_
  std::unique_ptr<grpc::Server> server_;
  bool stopped_ = false;
};

}  // namespace ctrd::proxy
