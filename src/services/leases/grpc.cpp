#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "protobuf/time.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/unary.h"
#include "services/leases/leases.h"
#include "services/registration.h"

namespace ctrd::services::leases {
namespace {

using protobuf::to_timestamp;

namespace api = containerd::services::leases::v1;

void to_proto(const metadata::Lease& l, api::Lease* out) {
  out->set_id(l.id);
  *out->mutable_created_at() = to_timestamp(l.created_at);
  out->mutable_labels()->insert(l.labels.begin(), l.labels.end());
}

metadata::LeaseResource from_proto(const api::Resource& r) { return {r.id(), r.type()}; }

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Leases::CallbackService> {
 public:
  GrpcFrontEnd(std::shared_ptr<LeasesService> s, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(std::move(s)), blocking_(std::move(blocking)) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* ctx, const api::CreateRequest* req,
                                   api::CreateResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto lease,
                            service_->create(ns, req->id(), {req->labels().begin(), req->labels().end()}));
      to_proto(lease, resp->mutable_lease());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const api::DeleteRequest* req,
                                   google::protobuf::Empty*) override {
    auto ns = server::namespace_of(*ctx);
    if (!ns.ok()) return server::unary(ctx, [&] { return ns.status(); });
    if (!req->sync()) return server::unary(ctx, [&] { return service_->remove(*ns, req->id(), false); });
    // A synchronous delete waits for a collection.
    return server::unary_blocking(ctx, *blocking_, [service = service_, ns = *ns, id = req->id()] {
      return service->remove(ns, id, true);
    });
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const api::ListRequest* req,
                                 api::ListResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto all, service_->list(ns, {req->filters().begin(), req->filters().end()}));
      for (const auto& l : all) to_proto(l, resp->add_leases());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* AddResource(grpc::CallbackServerContext* ctx, const api::AddResourceRequest* req,
                                        google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      return service_->add_resource(ns, req->id(), from_proto(req->resource()));
    });
  }
  grpc::ServerUnaryReactor* DeleteResource(grpc::CallbackServerContext* ctx,
                                           const api::DeleteResourceRequest* req,
                                           google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      return service_->delete_resource(ns, req->id(), from_proto(req->resource()));
    });
  }
  grpc::ServerUnaryReactor* ListResources(grpc::CallbackServerContext* ctx,
                                          const api::ListResourcesRequest* req,
                                          api::ListResourcesResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto all, service_->list_resources(ns, req->id()));
      for (const auto& r : all) {
        auto* out = resp->add_resources();
        out->set_id(r.id);
        out->set_type(r.type);
      }
      return errdefs::Status::Ok();
    });
  }

 private:
  std::shared_ptr<LeasesService> service_;
  std::shared_ptr<executor::WorkerPool> blocking_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<LeasesService, metadata::DB, gc::Scheduler>(
      registry, "leases-service", {plugin::type::kMetadata, plugin::type::kGC},
      [](plugin::InitContext&, std::shared_ptr<metadata::DB> db, std::shared_ptr<gc::Scheduler> gc) {
        return std::make_shared<LeasesService>(std::move(db), std::move(gc));
      });
  register_grpc_front_end<GrpcFrontEnd, LeasesService>(registry, "leases", "leases-service");
}

}  // namespace ctrd::services::leases
