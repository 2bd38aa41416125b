#include "services/healthcheck/healthcheck.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include "server/service.h"

namespace ctrd::services::healthcheck {
namespace {

class Service final : public server::GrpcService {
 public:
  // gRPC builds its health service when the server starts if this is enabled.
  void register_grpc(grpc::ServerBuilder&) override { grpc::EnableDefaultHealthCheckService(true); }
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGRPC),
      .id = "healthcheck",
      .init = [](plugin::InitContext&) -> errdefs::StatusOr<plugin::Instance> {
        return plugin::Instance::of<Service, server::GrpcService>(std::make_shared<Service>());
      },
  });
}

}  // namespace ctrd::services::healthcheck
