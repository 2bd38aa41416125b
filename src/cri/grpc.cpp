// The gRPC front end of the CRI plugin: runtime.v1's RuntimeService and
// ImageService, mapped onto CriService. Calls not listed here answer
// Unimplemented (the generated services' default).
#include <cri/runtime/v1/api.grpc.pb.h>

#include <memory>

#include "cri/cri_service.h"
#include "cri/plugin.h"
#include "server/service.h"
#include "server/unary.h"

namespace ctrd::cri {
namespace {

namespace api = runtime::v1;

class RuntimeFrontEnd final : public api::RuntimeService::CallbackService {
 public:
  explicit RuntimeFrontEnd(std::shared_ptr<CriService> service) : service_(std::move(service)) {}

  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* ctx, const api::VersionRequest*,
                                    api::VersionResponse* resp) override {
    return server::unary(ctx, [&] {
      const RuntimeVersion v = service_->version();
      resp->set_version(v.version);
      resp->set_runtime_name(v.runtime_name);
      resp->set_runtime_version(v.runtime_version);
      resp->set_runtime_api_version(v.runtime_api_version);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const api::StatusRequest* req,
                                   api::StatusResponse* resp) override {
    return server::unary(ctx, [&] {
      RuntimeStatus status = service_->status(req->verbose());
      for (const auto& c : status.conditions) {
        auto* out = resp->mutable_status()->add_conditions();
        out->set_type(c.type);
        out->set_status(c.status);
        out->set_reason(c.reason);
        out->set_message(c.message);
      }
      resp->mutable_info()->insert(status.info.begin(), status.info.end());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* UpdateRuntimeConfig(grpc::CallbackServerContext* ctx,
                                                const api::UpdateRuntimeConfigRequest* req,
                                                api::UpdateRuntimeConfigResponse*) override {
    return server::unary(ctx, [&] {
      return service_->update_runtime_config(req->runtime_config().network_config().pod_cidr());
    });
  }

 private:
  std::shared_ptr<CriService> service_;
};

class ImageFrontEnd final : public api::ImageService::CallbackService {};

// What the plugin exports: both services, on every gRPC listener.
class CriGrpc final : public server::GrpcService {
 public:
  explicit CriGrpc(std::shared_ptr<CriService> service) : service_(service), runtime_(service) {}

  void register_grpc(grpc::ServerBuilder& builder) override {
    builder.RegisterService(&runtime_);
    builder.RegisterService(&images_);
  }

 private:
  std::shared_ptr<CriService> service_;
  RuntimeFrontEnd runtime_;
  ImageFrontEnd images_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGRPC),
      .id = "cri",
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        auto service = std::make_shared<CriService>(std::move(config));
        return plugin::Instance::of<CriGrpc, server::GrpcService>(
            std::make_shared<CriGrpc>(std::move(service)));
      },
  });
}

}  // namespace ctrd::cri
