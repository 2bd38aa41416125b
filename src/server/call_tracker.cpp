#include "server/call_tracker.h"

namespace ctrd::server {

class TrackingInterceptor final : public grpc::experimental::Interceptor {
 public:
  TrackingInterceptor(std::shared_ptr<CallTracker> tracker, const char* method)
      : tracker_(std::move(tracker)), handle_(tracker_->add(method)) {}
  ~TrackingInterceptor() override { tracker_->remove(handle_); }
  TrackingInterceptor(const TrackingInterceptor&) = delete;
  TrackingInterceptor& operator=(const TrackingInterceptor&) = delete;

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override { methods->Proceed(); }

 private:
  std::shared_ptr<CallTracker> tracker_;
  CallTracker::Handle handle_;
};

namespace {

// Unary calls that block (on a shim, a layer, a collection) or wait for an exit.
bool is_long_unary(std::string_view method) {
  static constexpr std::string_view kLong[] = {
      "/containerd.services.tasks.v1.Tasks/",
      "/containerd.services.diff.v1.Diff/",
      "/containerd.services.images.v1.Images/Delete",
      "/containerd.services.leases.v1.Leases/Delete",
  };
  for (std::string_view prefix : kLong) {
    if (method.starts_with(prefix)) return true;
  }
  return false;
}

class TrackingFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TrackingFactory(std::shared_ptr<CallTracker> tracker) : tracker_(std::move(tracker)) {}
  // Only calls that can outlast a moment are tracked: a quick unary call
  // would pay an interceptor for nothing (it costs a few microseconds).
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    if (info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY && !is_long_unary(info->method())) {
      return nullptr;
    }
    return new TrackingInterceptor(tracker_, info->method());
  }

 private:
  std::shared_ptr<CallTracker> tracker_;
};

}  // namespace

CallTracker::Handle CallTracker::add(std::string method) {
  std::lock_guard lock(mu_);
  calls_.push_back({std::move(method), std::chrono::steady_clock::now()});
  return std::prev(calls_.end());
}

void CallTracker::remove(Handle h) {
  std::lock_guard lock(mu_);
  calls_.erase(h);
}

std::vector<CallTracker::Call> CallTracker::in_flight() const {
  std::lock_guard lock(mu_);
  return {calls_.begin(), calls_.end()};
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallTracker::interceptor_factory() {
  return std::make_unique<TrackingFactory>(shared_from_this());
}

}  // namespace ctrd::server
