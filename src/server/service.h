// server/service.h: what a plugin instance exports to the server.
//
// A gRPC plugin's instance implements GrpcService; the server registers every
// exported service on its gRPC listeners (unix socket, and TCP when set). The
// services implementing TtrpcService are served on the ttRPC socket.
#pragma once

#include <grpcpp/server_builder.h>

#include "errdefs/errdefs.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::server {

class GrpcService {
 public:
  virtual ~GrpcService() = default;
  // Registers the service(s) with `builder`; the instance outlives the server.
  virtual void register_grpc(grpc::ServerBuilder& builder) = 0;
};

// A gRPC front end that is itself the generated service it registers.
template <typename GeneratedService>
class GrpcServiceOf : public GeneratedService, public GrpcService {
 public:
  void register_grpc(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }
};

// A plugin instance that serves calls on the ttRPC socket (what shims talk
// to) implements TtrpcService; the server registers its handlers before the
// socket serves.
class TtrpcService {
 public:
  virtual ~TtrpcService() = default;
  virtual errdefs::Status register_ttrpc(ttrpc::Server& server) = 0;
};

}  // namespace ctrd::server
