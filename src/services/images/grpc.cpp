#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "protobuf/time.h"
#include "protobuf/types.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/unary.h"
#include "services/images/images.h"
#include "services/registration.h"

namespace ctrd::services::images {
namespace {

using protobuf::to_timestamp;

namespace api = containerd::services::images::v1;

void to_proto(const metadata::Image& i, api::Image* out) {
  out->set_name(i.name);
  out->mutable_labels()->insert(i.labels.begin(), i.labels.end());
  protobuf::to_proto(i.target, out->mutable_target());
  *out->mutable_created_at() = to_timestamp(i.created_at);
  *out->mutable_updated_at() = to_timestamp(i.updated_at);
}

metadata::Image from_proto(const api::Image& i) {
  metadata::Image image;
  image.name = i.name();
  image.labels = {i.labels().begin(), i.labels().end()};
  image.target = protobuf::from_proto(i.target());
  return image;
}

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Images::CallbackService> {
 public:
  GrpcFrontEnd(std::shared_ptr<ImagesService> s, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(std::move(s)), blocking_(std::move(blocking)) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const api::GetImageRequest* req,
                                api::GetImageResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto image, service_->get(ns, req->name()));
      to_proto(image, resp->mutable_image());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const api::ListImagesRequest* req,
                                 api::ListImagesResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto all, service_->list(ns, {req->filters().begin(), req->filters().end()}));
      for (const auto& i : all) to_proto(i, resp->add_images());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* ctx, const api::CreateImageRequest* req,
                                   api::CreateImageResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto image, service_->create(ns, from_proto(req->image())));
      to_proto(image, resp->mutable_image());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx, const api::UpdateImageRequest* req,
                                   api::UpdateImageResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      std::vector<std::string> paths(req->update_mask().paths().begin(), req->update_mask().paths().end());
      CTRD_ASSIGN_OR_RETURN(auto image, service_->update(ns, from_proto(req->image()), paths));
      to_proto(image, resp->mutable_image());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const api::DeleteImageRequest* req,
                                   google::protobuf::Empty*) override {
    auto ns = server::namespace_of(*ctx);
    if (!ns.ok()) return server::unary(ctx, [&] { return ns.status(); });
    if (!req->sync()) return server::unary(ctx, [&] { return service_->remove(*ns, req->name(), false); });
    // A synchronous delete waits for a collection.
    return server::unary_blocking(ctx, *blocking_, [service = service_, ns = *ns, name = req->name()] {
      return service->remove(ns, name, true);
    });
  }

 private:
  std::shared_ptr<ImagesService> service_;
  std::shared_ptr<executor::WorkerPool> blocking_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<ImagesService, metadata::DB, gc::Scheduler>(
      registry, "images-service", {plugin::type::kMetadata, plugin::type::kGC},
      [](plugin::InitContext& ic, std::shared_ptr<metadata::DB> db, std::shared_ptr<gc::Scheduler> gc) {
        return std::make_shared<ImagesService>(std::move(db), ic.events(), std::move(gc));
      });
  register_grpc_front_end<GrpcFrontEnd, ImagesService>(registry, "images", "images-service");
}

}  // namespace ctrd::services::images
