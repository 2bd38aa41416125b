// server/unary.h: the shape of every unary handler in ctrd's callback-based
// gRPC services — run the work, map its Status at the edge, finish.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <utility>

#include "errdefs/grpc_status.h"
#include "executor/worker_pool.h"

namespace ctrd::server {

// `work` returns an errdefs::Status; the call finishes with its gRPC mapping.
template <typename Work>
grpc::ServerUnaryReactor* unary(grpc::CallbackServerContext* ctx, Work&& work) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(errdefs::to_grpc(work()));
  return reactor;
}

// For work that blocks for long (applying a layer, a call to a shim): it runs
// on the server's pool for blocking work (InitContext::blocking()), so the
// callback threads keep serving other calls and the threads stay bounded.
// `work` must own what it uses (capture by value).
template <typename Work>
grpc::ServerUnaryReactor* unary_blocking(grpc::CallbackServerContext* ctx, executor::WorkerPool& pool,
                                         Work work) {
  auto* reactor = ctx->DefaultReactor();
  const bool queued =
      pool.submit([reactor, work = std::move(work)]() mutable { reactor->Finish(errdefs::to_grpc(work())); });
  if (!queued) reactor->Finish(errdefs::to_grpc(errdefs::Unavailable("server is shutting down")));
  return reactor;
}

}  // namespace ctrd::server
