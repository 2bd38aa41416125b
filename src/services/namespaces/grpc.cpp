#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "server/grpc_context.h"
#include "server/service.h"
#include "server/unary.h"
#include "services/namespaces/namespaces.h"
#include "services/registration.h"

namespace ctrd::services::namespaces {
namespace {

namespace api = containerd::services::namespaces::v1;

void to_proto(const metadata::Namespace& ns, api::Namespace* out) {
  out->set_name(ns.name);
  out->mutable_labels()->insert(ns.labels.begin(), ns.labels.end());
}

metadata::Namespace from_proto(const api::Namespace& ns) {
  return {ns.name(), metadata::Labels(ns.labels().begin(), ns.labels().end())};
}

// The namespace the caller works in, if it sent a valid one; namespace calls
// themselves do not need it, only their events do.
std::string caller_namespace(const grpc::ServerContextBase& ctx) {
  auto ns = server::namespace_of(ctx);
  return ns.ok() ? *ns : std::string();
}

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Namespaces::CallbackService> {
 public:
  explicit GrpcFrontEnd(std::shared_ptr<NamespacesService> s) : service_(std::move(s)) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const api::GetNamespaceRequest* req,
                                api::GetNamespaceResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto ns, service_->get(req->name()));
      to_proto(ns, resp->mutable_namespace_());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const api::ListNamespacesRequest*,
                                 api::ListNamespacesResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto all, service_->list());
      for (const auto& ns : all) to_proto(ns, resp->add_namespaces());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* ctx, const api::CreateNamespaceRequest* req,
                                   api::CreateNamespaceResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto ns, service_->create(from_proto(req->namespace_()), caller_namespace(*ctx)));
      to_proto(ns, resp->mutable_namespace_());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx, const api::UpdateNamespaceRequest* req,
                                   api::UpdateNamespaceResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      std::vector<std::string> paths(req->update_mask().paths().begin(), req->update_mask().paths().end());
      CTRD_ASSIGN_OR_RETURN(auto ns,
                            service_->update(from_proto(req->namespace_()), paths, caller_namespace(*ctx)));
      to_proto(ns, resp->mutable_namespace_());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const api::DeleteNamespaceRequest* req,
                                   google::protobuf::Empty*) override {
    return server::unary(ctx, [&] { return service_->remove(req->name()); });
  }

 private:
  std::shared_ptr<NamespacesService> service_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<NamespacesService, metadata::DB>(
      registry, "namespaces-service", plugin::type::kMetadata,
      [](plugin::InitContext& ic, std::shared_ptr<metadata::DB> db) {
        return std::make_shared<NamespacesService>(std::move(db), ic.events());
      });
  register_grpc_front_end<GrpcFrontEnd, NamespacesService>(registry, "namespaces", "namespaces-service");
}

}  // namespace ctrd::services::namespaces
