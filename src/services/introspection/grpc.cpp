#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "errdefs/grpc_status.h"
#include "server/service.h"
#include "server/unary.h"
#include "services/introspection/introspection.h"
#include "services/registration.h"

namespace ctrd::services::introspection {
namespace {

namespace api = containerd::services::introspection::v1;

void to_proto(const plugin::Plugin& p, api::Plugin* out) {
  const auto& r = p.registration();
  out->set_type(r.type);
  out->set_id(r.id);
  for (const auto& req : r.requirements) out->add_requires_(req);
  for (const auto& pl : p.meta().platforms) {
    auto* o = out->add_platforms();
    o->set_os(pl.os);
    o->set_architecture(pl.architecture);
    o->set_variant(pl.variant);
  }
  for (const auto& [k, v] : p.meta().exports) (*out->mutable_exports())[k] = v;
  for (const auto& c : p.meta().capabilities) out->add_capabilities(c);
  if (!p.ok()) {
    auto* err = out->mutable_init_err();
    err->set_code(static_cast<int32_t>(errdefs::to_grpc_code(p.error().code())));
    // ctr shows a plugin as skipped when its error mentions "skip plugin".
    err->set_message(errdefs::IsSkip(p.error()) ? p.error().message() + ": skip plugin"
                                                : p.error().message());
  }
}

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Introspection::CallbackService> {
 public:
  explicit GrpcFrontEnd(std::shared_ptr<IntrospectionService> service) : service_(std::move(service)) {}

  grpc::ServerUnaryReactor* Plugins(grpc::CallbackServerContext* ctx, const api::PluginsRequest* req,
                                    api::PluginsResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto list, service_->plugins({req->filters().begin(), req->filters().end()}));
      for (const auto* p : list) to_proto(*p, resp->add_plugins());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* Server(grpc::CallbackServerContext* ctx, const google::protobuf::Empty*,
                                   api::ServerResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string id, service_->uuid());
      resp->set_uuid(id);
      return errdefs::Status::Ok();
    });
  }

 private:
  std::shared_ptr<IntrospectionService> service_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kService),
      .id = "introspection-service",
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        return plugin::Instance::of(std::make_shared<IntrospectionService>(ic.plugins(), ic.root()));
      },
  });
  register_grpc_front_end<GrpcFrontEnd, IntrospectionService>(registry, "introspection",
                                                              "introspection-service");
}

}  // namespace ctrd::services::introspection
