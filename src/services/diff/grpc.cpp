#include <github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "protobuf/types.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/unary.h"
#include "services/diff/diff.h"
#include "services/registration.h"

namespace ctrd::services::diff {
namespace {

namespace api = containerd::services::diff::v1;

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Diff::CallbackService> {
 public:
  GrpcFrontEnd(std::shared_ptr<DiffService> s, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(std::move(s)), blocking_(std::move(blocking)) {}

  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* ctx, const api::ApplyRequest* req,
                                  api::ApplyResponse* resp) override {
    auto ns = server::namespace_of(*ctx);
    if (!ns.ok()) return server::unary(ctx, [&] { return ns.status(); });
    df::ApplyRequest request{*ns, protobuf::from_proto(req->diff()), protobuf::from_proto(req->mounts())};
    // Handed to stream processors by id (on their fd 3), as containerd does.
    for (const auto& [id, any] : req->payloads()) request.payloads[id] = any.SerializeAsString();
    // Applying a layer takes seconds: off the callback threads.
    return server::unary_blocking(ctx, *blocking_, [service = service_, request = std::move(request), resp] {
      CTRD_ASSIGN_OR_RETURN(auto applied, service->apply(request));
      protobuf::to_proto(applied, resp->mutable_applied());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* Diff(grpc::CallbackServerContext* ctx, const api::DiffRequest* req,
                                 api::DiffResponse* resp) override {
    auto ns = server::namespace_of(*ctx);
    if (!ns.ok()) return server::unary(ctx, [&] { return ns.status(); });
    df::CompareRequest request{*ns,
                               server::lease_of(*ctx),
                               protobuf::from_proto(req->left()),
                               protobuf::from_proto(req->right()),
                               req->media_type(),
                               req->ref(),
                               {req->labels().begin(), req->labels().end()}};
    return server::unary_blocking(ctx, *blocking_, [service = service_, request = std::move(request), resp] {
      CTRD_ASSIGN_OR_RETURN(auto diffed, service->compare(request));
      protobuf::to_proto(diffed, resp->mutable_diff());
      return errdefs::Status::Ok();
    });
  }

 private:
  std::shared_ptr<DiffService> service_;
  std::shared_ptr<executor::WorkerPool> blocking_;
};

struct Config {
  std::vector<std::string> order{"walking"};
  void bind(config::Binder& b) { b.field("default", order); }
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kService),
      .id = "diff-service",
      .requirements = {std::string(plugin::type::kDiff)},
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        std::vector<std::shared_ptr<df::Differ>> differs;
        for (const auto& id : config.order) {
          auto differ = ic.get_by_id<df::Differ>(plugin::type::kDiff, id);
          if (!differ.ok()) return differ.status().with_context("differ " + id + " named in default");
          differs.push_back(*differ);
        }
        return plugin::Instance::of(std::make_shared<DiffService>(std::move(differs)));
      },
  });
  register_grpc_front_end<GrpcFrontEnd, DiffService>(registry, "diff", "diff-service");
}

}  // namespace ctrd::services::diff
