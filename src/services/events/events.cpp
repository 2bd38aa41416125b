#include "services/events/events.h"

#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/server_builder.h>

#include <mutex>

#include "events/exchange.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/stream.h"
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
    auto subscribed = exchange_->subscribe({req->filters().begin(), req->filters().end()});
    if (!subscribed.ok()) return server::failed_stream<api::Envelope>(subscribed.status());
    std::shared_ptr<Subscription> sub = *subscribed;
    auto* writer = new server::QueueWriter<api::Envelope>(
        {.next =
             [sub](api::Envelope* out) {
               auto e = sub->pop();
               if (e) to_proto(*e, out);
               return e.has_value();
             },
         .closed = [sub]() -> std::optional<errdefs::Status> {
           if (!sub->closed()) return std::nullopt;
           return sub->closed_reason();
         },
         .unsubscribe = [exchange = exchange_, sub] { exchange->unsubscribe(sub); }},
        /*announce=*/false);
    sub->set_notify(writer->waker());
    writer->start();
    return writer;
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
