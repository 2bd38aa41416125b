// server/unary.h: the shape of every unary handler in ctrd's callback-based
// gRPC services — run the work, map its Status at the edge, finish.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <thread>
#include <utility>

#include "errdefs/grpc_status.h"

namespace ctrd::server {

// `work` returns an errdefs::Status; the call finishes with its gRPC mapping.
template <typename Work>
grpc::ServerUnaryReactor* unary(grpc::CallbackServerContext* ctx, Work&& work) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(errdefs::to_grpc(work()));
  return reactor;
}

// For work that blocks for long (applying a layer, a collection): it runs on
// a thread of its own so the callback threads keep serving other calls.
// `work` must own what it uses (capture by value).
template <typename Work>
grpc::ServerUnaryReactor* unary_blocking(grpc::CallbackServerContext* ctx, Work work) {
  auto* reactor = ctx->DefaultReactor();
  std::thread([reactor, work = std::move(work)]() mutable {
    reactor->Finish(errdefs::to_grpc(work()));
  }).detach();
  return reactor;
}

}  // namespace ctrd::server
