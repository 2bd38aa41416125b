#include "services/events/events.h"

#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/server_builder.h>

#include <mutex>

#include "events/exchange.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/unary.h"

namespace ctrd::services::events {
namespace {

namespace api = containerd::services::events::v1;
namespace ttrpc_api = containerd::services::events::ttrpc::v1;
using ctrd::events::Envelope;
using ctrd::events::Exchange;
using ctrd::events::Subscription;
using google::protobuf::util::TimeUtil;

void to_proto(const Envelope& e, api::Envelope* out) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(e.timestamp.time_since_epoch()).count();
  *out->mutable_timestamp() = TimeUtil::NanosecondsToTimestamp(ns);
  out->set_namespace_(e.ns);
  out->set_topic(e.topic);
  out->mutable_event()->set_type_url(e.type_url);
  out->mutable_event()->set_value(e.value);
}

// The gRPC and ttRPC APIs each have their own Envelope message, with the same fields.
template <typename ProtoEnvelope>
Envelope from_proto(const ProtoEnvelope& e) {
  Envelope out;
  out.timestamp =
      std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(TimeUtil::TimestampToNanoseconds(e.timestamp()))));
  out.ns = e.namespace_();
  out.topic = e.topic();
  out.type_url = e.event().type_url();
  out.value = e.event().value();
  return out;
}

// Streams one subscription to one client. Woken by the exchange (notify) and by
// gRPC (write done, cancel); owns itself and is deleted in OnDone.
class SubscribeReactor final : public grpc::ServerWriteReactor<api::Envelope> {
 public:
  SubscribeReactor(std::shared_ptr<Exchange> exchange, std::shared_ptr<Subscription> sub)
      : exchange_(std::move(exchange)), sub_(std::move(sub)), guard_(std::make_shared<Guard>()) {
    guard_->reactor = this;
    std::weak_ptr<Guard> weak = guard_;
    sub_->set_notify([weak] {
      if (auto g = weak.lock()) {
        std::lock_guard lock(g->mu);
        if (g->reactor) g->reactor->pump_locked();
      }
    });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(guard_->mu);
    writing_ = false;
    if (!ok) {
      finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "subscriber went away"));
      return;
    }
    pump_locked();
  }

  // The call ends here, or in OnWriteDone when a write is in flight: either way
  // `cancelled_` makes the next pump finish it, whatever the write's outcome.
  void OnCancel() override {
    {
      std::lock_guard lock(guard_->mu);
      cancelled_ = true;
      pump_locked();
    }
    exchange_->unsubscribe(sub_);
  }

  void OnDone() override {
    exchange_->unsubscribe(sub_);
    {
      std::lock_guard lock(guard_->mu);
      guard_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Guard {
    std::recursive_mutex mu;  // recursive: gRPC may run a reaction inline
    SubscribeReactor* reactor = nullptr;
  };

  void pump_locked() {
    if (writing_ || finished_) return;
    if (cancelled_) return finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "subscription cancelled"));
    if (auto e = sub_->pop()) {
      message_.Clear();
      to_proto(*e, &message_);
      writing_ = true;
      StartWrite(&message_);
      return;
    }
    if (sub_->closed()) finish_locked(errdefs::to_grpc(sub_->closed_reason()));
  }

  void finish_locked(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }

  std::shared_ptr<Exchange> exchange_;
  std::shared_ptr<Subscription> sub_;
  std::shared_ptr<Guard> guard_;
  api::Envelope message_;
  bool writing_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
};

// The events API on the gRPC socket, and Forward on the ttRPC socket, which is
// how shims (given TTRPC_ADDRESS) hand the daemon their task events.
class Service final : public server::GrpcServiceOf<api::Events::CallbackService>,
                      public server::TtrpcService {
 public:
  explicit Service(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* ctx, const api::PublishRequest* req,
                                    google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      return exchange_->publish(ns, req->topic(), req->event().type_url(), req->event().value());
    });
  }

  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* ctx, const api::ForwardRequest* req,
                                    google::protobuf::Empty*) override {
    return server::unary(ctx, [&] { return exchange_->forward(from_proto(req->envelope())); });
  }

  grpc::ServerWriteReactor<api::Envelope>* Subscribe(grpc::CallbackServerContext*,
                                                     const api::SubscribeRequest* req) override {
    auto sub = exchange_->subscribe({req->filters().begin(), req->filters().end()});
    if (!sub.ok()) {
      struct Failed final : grpc::ServerWriteReactor<api::Envelope> {
        explicit Failed(const grpc::Status& s) { Finish(s); }
        void OnDone() override { delete this; }
      };
      return new Failed(errdefs::to_grpc(sub.status()));
    }
    return new SubscribeReactor(exchange_, *sub);
  }

  errdefs::Status register_ttrpc(ttrpc::Server& server) override {
    return server.add_handler(
        "containerd.services.events.ttrpc.v1.Events", "Forward",
        [exchange = exchange_](const ttrpc::CallContext&,
                               std::string_view request) -> errdefs::StatusOr<std::string> {
          ttrpc_api::ForwardRequest req;
          if (!req.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
            return errdefs::InvalidArgument("malformed ForwardRequest");
          }
          CTRD_RETURN_IF_ERROR(exchange->forward(from_proto(req.envelope())));
          return google::protobuf::Empty().SerializeAsString();
        });
  }

 private:
  std::shared_ptr<Exchange> exchange_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGRPC),
      .id = "events",
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        if (!ic.events()) return errdefs::FailedPrecondition("no event exchange");
        return plugin::Instance::of<Service, server::GrpcService, server::TtrpcService>(
            std::make_shared<Service>(ic.events()));
      },
  });
}

}  // namespace ctrd::services::events
