// metrics/grpc_server_metrics: gRPC server metrics under go-grpc-prometheus'
// names and labels, which containerd exports and dashboards expect:
//   grpc_server_started_total, grpc_server_handled_total (with grpc_code),
//   grpc_server_msg_received_total, grpc_server_msg_sent_total and, when
//   enabled, the grpc_server_handling_seconds histogram.
//
// Counting is a grpc server interceptor. Each method's series are resolved once
// and found again through a lock-free table, so a call costs a hash of its
// method name and a few relaxed atomic increments. Like go-grpc-prometheus,
// every registered method's series start at zero (see preregister_option), and
// only methods of services known to the protobuf descriptor pool are counted,
// so clients calling made-up methods cannot grow the series without bound.
#pragma once

#include <grpcpp/server_builder.h>
#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "metrics/metrics.h"

namespace ctrd::metrics {

// go-grpc-prometheus' DefBuckets for grpc_server_handling_seconds.
inline const std::vector<double> kGrpcHandlingBuckets = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

// A grpc::StatusCode's name as Go prints codes.Code ("OK", "NotFound", ...).
std::string_view grpc_code_name(int code);

class GrpcServerMetrics : public std::enable_shared_from_this<GrpcServerMetrics> {
 public:
  static constexpr int kNumCodes = 17;

  struct MethodSeries {
    std::string full_name;  // "/pkg.Service/Method"
    Counter* started = nullptr;
    Counter* msg_received = nullptr;
    Counter* msg_sent = nullptr;
    std::array<Counter*, kNumCodes> handled{};
    Histogram* handling = nullptr;  // null unless the histogram is enabled
  };

  static std::shared_ptr<GrpcServerMetrics> create(std::shared_ptr<Registry> registry,
                                                   bool handling_histogram);

  // The interceptor factory for ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor_factory();
  // A builder option that, once the server is built, pre-registers every
  // method of every service registered on it.
  std::unique_ptr<grpc::ServerBuilderOption> preregister_option();

  // Creates (zeroed) series for every method of the service, named as in its
  // .proto ("containerd.services.version.v1.Version"); NotFound when the
  // protobuf descriptor pool does not know it.
  errdefs::Status preregister(std::string_view service_full_name);

  // The series of "/pkg.Service/Method", created on first use with grpc_type
  // `type` (from the descriptor when empty); null for a method the descriptor
  // pool does not know. Lock-free once created.
  MethodSeries* series(std::string_view full_method, std::string_view type = {});

 private:
  GrpcServerMetrics(std::shared_ptr<Registry> registry, bool handling_histogram);
  MethodSeries* find(std::string_view full_method, size_t hash) const;
  MethodSeries* insert_locked(std::string_view full_method, std::string_view type, size_t hash);

  static constexpr size_t kSlots = 1024;  // power of two; containerd serves ~100 methods

  std::shared_ptr<Registry> registry_;
  CounterFamily& started_;
  CounterFamily& handled_;
  CounterFamily& msg_received_;
  CounterFamily& msg_sent_;
  HistogramFamily* handling_;
  std::mutex insert_mu_;
  std::vector<std::unique_ptr<MethodSeries>> owned_;
  std::array<std::atomic<MethodSeries*>, kSlots> slots_{};
};

}  // namespace ctrd::metrics
