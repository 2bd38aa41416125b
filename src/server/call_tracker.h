// server/call_tracker.h: which gRPC calls are in flight, so that a shutdown
// that cannot drain them in time can say which ones held it up.
//
// The tracker is a gRPC server interceptor: one is created by gRPC when a call
// starts and destroyed when the call is done (after the reactor's OnDone).
// It follows every streaming call and the unary calls that block or wait
// (tasks, diff, synchronous deletes); other unary calls finish on the thread
// that received them and are not worth an interceptor. Thread-safe.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ctrd::server {

class CallTracker : public std::enable_shared_from_this<CallTracker> {
 public:
  struct Call {
    std::string method;  // e.g. "/containerd.services.events.v1.Events/Subscribe"
    std::chrono::steady_clock::time_point started;
  };

  // The calls in flight now, oldest first.
  std::vector<Call> in_flight() const;

  // For grpc::ServerBuilder's interceptor creators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor_factory();

 private:
  friend class TrackingInterceptor;
  using Handle = std::list<Call>::iterator;
  Handle add(std::string method);
  void remove(Handle h);

  mutable std::mutex mu_;
  std::list<Call> calls_;
};

}  // namespace ctrd::server
