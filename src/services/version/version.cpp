#include "services/version/version.h"

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "server/service.h"
#include "server/unary.h"
#include "version/version.h"

namespace ctrd::services::version {
namespace {

namespace api = containerd::services::version::v1;

class Service final : public server::GrpcServiceOf<api::Version::CallbackService> {
 public:
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* ctx, const google::protobuf::Empty*,
                                    api::VersionResponse* resp) override {
    return server::unary(ctx, [&] {
      resp->set_version(ctrd::version::kVersion);
      resp->set_revision(ctrd::version::kRevision);
      return errdefs::Status::Ok();
    });
  }
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGRPC),
      .id = "version",
      .init = [](plugin::InitContext&) -> errdefs::StatusOr<plugin::Instance> {
        return plugin::Instance::of<Service, server::GrpcService>(std::make_shared<Service>());
      },
  });
}

}  // namespace ctrd::services::version
