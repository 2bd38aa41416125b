#include "metrics/grpc_server_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>

#include <chrono>
#include <functional>

#include "log/log.h"

namespace ctrd::metrics {

namespace {

constexpr std::array<std::string_view, GrpcServerMetrics::kNumCodes> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

std::string_view type_label(grpc::experimental::ServerRpcInfo::Type t) {
  using T = grpc::experimental::ServerRpcInfo::Type;
  switch (t) {
    case T::UNARY:
      return "unary";
    case T::CLIENT_STREAMING:
      return "client_stream";
    case T::SERVER_STREAMING:
      return "server_stream";
    case T::BIDI_STREAMING:
      break;
  }
  return "bidi_stream";
}

std::string_view type_label(const google::protobuf::MethodDescriptor& m) {
  if (m.client_streaming()) return m.server_streaming() ? "bidi_stream" : "client_stream";
  return m.server_streaming() ? "server_stream" : "unary";
}

// "/pkg.Service/Method" split into service and method; false when malformed.
bool split_method(std::string_view full, std::string_view& service, std::string_view& method) {
  if (!full.starts_with('/')) return false;
  full.remove_prefix(1);
  const auto slash = full.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == full.size()) return false;
  service = full.substr(0, slash);
  method = full.substr(slash + 1);
  return method.find('/') == std::string_view::npos;
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(GrpcServerMetrics::MethodSeries* series)
      : series_(series), start_(std::chrono::steady_clock::now()) {
    series_->started->inc();
  }
  // A call cancelled before its status went out still counts as handled, as
  // the Go interceptor records the handler's (canceled) error.
  ~MetricsInterceptor() override {
    if (!handled_) finish(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE) && m->GetRecvMessage() != nullptr) {
      series_->msg_received->inc();
    }
    if (m->QueryInterceptionHookPoint(Hook::POST_SEND_MESSAGE) && m->GetSendMessageStatus()) {
      series_->msg_sent->inc();
    }
    if (m->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS) && !handled_) {
      finish(m->GetSendStatus().error_code());
    }
    m->Proceed();
  }

 private:
  void finish(grpc::StatusCode code) {
    handled_ = true;
    const int c = static_cast<int>(code);
    series_
        ->handled[c >= 0 && c < GrpcServerMetrics::kNumCodes ? c
                                                             : static_cast<int>(grpc::StatusCode::UNKNOWN)]
        ->inc();
    if (series_->handling != nullptr) {
      series_->handling->observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
  }

  GrpcServerMetrics::MethodSeries* series_;
  std::chrono::steady_clock::time_point start_;
  bool handled_ = false;
};

class InterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactory(std::shared_ptr<GrpcServerMetrics> metrics) : metrics_(std::move(metrics)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    auto* series = metrics_->series(info->method(), type_label(info->type()));
    return series == nullptr ? nullptr : new MetricsInterceptor(series);
  }

 private:
  std::shared_ptr<GrpcServerMetrics> metrics_;
};

// Sees the built server's service list, which the builder does not expose.
class PreregisterPlugin final : public grpc::ServerBuilderPlugin {
 public:
  explicit PreregisterPlugin(std::shared_ptr<GrpcServerMetrics> metrics) : metrics_(std::move(metrics)) {}
  std::string name() override { return "ctrd_grpc_metrics_preregister"; }
  void InitServer(grpc::ServerInitializer*) override {}
  void Finish(grpc::ServerInitializer* si) override {
    for (const auto& service : *si->GetServiceList()) {
      if (auto s = metrics_->preregister(service); !s.ok()) {
        log::debug("metrics: service not pre-registered", {{"service", service}, {"error", s.message()}});
      }
    }
  }
  void ChangeArguments(const std::string&, void*) override {}

 private:
  std::shared_ptr<GrpcServerMetrics> metrics_;
};

class PreregisterOption final : public grpc::ServerBuilderOption {
 public:
  explicit PreregisterOption(std::shared_ptr<GrpcServerMetrics> metrics) : metrics_(std::move(metrics)) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<PreregisterPlugin>(metrics_));
  }

 private:
  std::shared_ptr<GrpcServerMetrics> metrics_;
};

}  // namespace

std::string_view grpc_code_name(int code) {
  if (code < 0 || code >= GrpcServerMetrics::kNumCodes) return "Unknown";
  return kCodeNames[static_cast<size_t>(code)];
}

std::shared_ptr<GrpcServerMetrics> GrpcServerMetrics::create(std::shared_ptr<Registry> registry,
                                                             bool handling_histogram) {
  return std::shared_ptr<GrpcServerMetrics>(new GrpcServerMetrics(std::move(registry), handling_histogram));
}

GrpcServerMetrics::GrpcServerMetrics(std::shared_ptr<Registry> registry, bool handling_histogram)
    : registry_(std::move(registry)),
      started_(registry_->counter("grpc_server_started_total", "Total number of RPCs started on the server.",
                                  {"grpc_method", "grpc_service", "grpc_type"})),
      handled_(registry_->counter(
          "grpc_server_handled_total",
          "Total number of RPCs completed on the server, regardless of success or failure.",
          {"grpc_code", "grpc_method", "grpc_service", "grpc_type"})),
      msg_received_(registry_->counter("grpc_server_msg_received_total",
                                       "Total number of RPC stream messages received on the server.",
                                       {"grpc_method", "grpc_service", "grpc_type"})),
      msg_sent_(registry_->counter("grpc_server_msg_sent_total",
                                   "Total number of gRPC stream messages sent by the server.",
                                   {"grpc_method", "grpc_service", "grpc_type"})),
      handling_(handling_histogram ? &registry_->histogram(
                                         "grpc_server_handling_seconds",
                                         "Histogram of response latency (seconds) of gRPC that had been "
                                         "application-level handled by the server.",
                                         {"grpc_method", "grpc_service", "grpc_type"}, kGrpcHandlingBuckets)
                                   : nullptr) {
  for (auto& slot : slots_) slot.store(nullptr, std::memory_order_relaxed);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
GrpcServerMetrics::interceptor_factory() {
  return std::make_unique<InterceptorFactory>(shared_from_this());
}

std::unique_ptr<grpc::ServerBuilderOption> GrpcServerMetrics::preregister_option() {
  return std::make_unique<PreregisterOption>(shared_from_this());
}

errdefs::Status GrpcServerMetrics::preregister(std::string_view service_full_name) {
  const auto* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service_full_name));
  if (service == nullptr)
    return errdefs::NotFound("service " + std::string(service_full_name) + " has no descriptor");
  std::lock_guard lock(insert_mu_);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* m = service->method(i);
    const std::string full = "/" + service->full_name() + "/" + m->name();
    const size_t hash = std::hash<std::string_view>{}(full);
    if (find(full, hash) == nullptr) insert_locked(full, type_label(*m), hash);
  }
  return errdefs::Status::Ok();
}

GrpcServerMetrics::MethodSeries* GrpcServerMetrics::series(std::string_view full_method,
                                                           std::string_view type) {
  const size_t hash = std::hash<std::string_view>{}(full_method);
  if (auto* s = find(full_method, hash)) return s;

  std::string_view service, method;
  if (!split_method(full_method, service, method)) return nullptr;
  const auto* sd =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  const auto* md = sd == nullptr ? nullptr : sd->FindMethodByName(std::string(method));
  if (md == nullptr) return nullptr;
  std::lock_guard lock(insert_mu_);
  if (auto* s = find(full_method, hash)) return s;
  return insert_locked(full_method, type.empty() ? type_label(*md) : type, hash);
}

GrpcServerMetrics::MethodSeries* GrpcServerMetrics::find(std::string_view full_method, size_t hash) const {
  for (size_t i = 0; i < kSlots; ++i) {
    MethodSeries* s = slots_[(hash + i) & (kSlots - 1)].load(std::memory_order_acquire);
    if (s == nullptr) return nullptr;
    if (s->full_name == full_method) return s;
  }
  return nullptr;
}

GrpcServerMetrics::MethodSeries* GrpcServerMetrics::insert_locked(std::string_view full_method,
                                                                  std::string_view type, size_t hash) {
  // Half full keeps probes short; past that, methods go uncounted rather than slow.
  if (owned_.size() >= kSlots / 2) return nullptr;
  std::string_view service, method;
  if (!split_method(full_method, service, method)) return nullptr;

  auto s = std::make_unique<MethodSeries>();
  s->full_name = std::string(full_method);
  const std::string svc(service), name(method), ty(type);
  s->started = &started_.with({name, svc, ty});
  s->msg_received = &msg_received_.with({name, svc, ty});
  s->msg_sent = &msg_sent_.with({name, svc, ty});
  for (int c = 0; c < kNumCodes; ++c)
    s->handled[c] = &handled_.with({std::string(kCodeNames[c]), name, svc, ty});
  if (handling_ != nullptr) s->handling = &handling_->with({name, svc, ty});

  size_t i = hash & (kSlots - 1);
  while (slots_[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & (kSlots - 1);
  MethodSeries* raw = s.get();
  owned_.push_back(std::move(s));
  slots_[i].store(raw, std::memory_order_release);
  return raw;
}

}  // namespace ctrd::metrics
