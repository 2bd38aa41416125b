#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "protobuf/time.h"
#include "protobuf/types.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/stream.h"
#include "server/unary.h"
#include "services/registration.h"
#include "services/snapshots/snapshots.h"

namespace ctrd::services::snapshots {
namespace {

using protobuf::to_timestamp;

namespace api = containerd::services::snapshots::v1;

// containerd's List sends infos in batches of this many per message.
constexpr int kListBatch = 100;

void to_proto(const sn::Info& i, api::Info* out) {
  out->set_name(i.name);
  out->set_parent(i.parent);
  out->set_kind(static_cast<api::Kind>(i.kind));
  *out->mutable_created_at() = to_timestamp(i.created_at);
  *out->mutable_updated_at() = to_timestamp(i.updated_at);
  out->mutable_labels()->insert(i.labels.begin(), i.labels.end());
}

template <typename Request>
errdefs::StatusOr<Scope> scope_of(const grpc::CallbackServerContext& ctx, const Request& req) {
  CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(ctx));
  return Scope{std::move(ns), server::lease_of(ctx), req.snapshotter()};
}

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Snapshots::CallbackService> {
 public:
  explicit GrpcFrontEnd(std::shared_ptr<SnapshotsService> s) : service_(std::move(s)) {}

  grpc::ServerUnaryReactor* Prepare(grpc::CallbackServerContext* ctx, const api::PrepareSnapshotRequest* req,
                                    api::PrepareSnapshotResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      CTRD_ASSIGN_OR_RETURN(auto mounts, service_->prepare(scope, req->key(), req->parent(),
                                                           {req->labels().begin(), req->labels().end()}));
      protobuf::to_proto(mounts, resp->mutable_mounts());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* View(grpc::CallbackServerContext* ctx, const api::ViewSnapshotRequest* req,
                                 api::ViewSnapshotResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      CTRD_ASSIGN_OR_RETURN(auto mounts, service_->view(scope, req->key(), req->parent(),
                                                        {req->labels().begin(), req->labels().end()}));
      protobuf::to_proto(mounts, resp->mutable_mounts());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Mounts(grpc::CallbackServerContext* ctx, const api::MountsRequest* req,
                                   api::MountsResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      CTRD_ASSIGN_OR_RETURN(auto mounts, service_->mounts(scope, req->key()));
      protobuf::to_proto(mounts, resp->mutable_mounts());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* ctx, const api::CommitSnapshotRequest* req,
                                   google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      return service_->commit(scope, req->name(), req->key(), {req->labels().begin(), req->labels().end()});
    });
  }
  grpc::ServerUnaryReactor* Remove(grpc::CallbackServerContext* ctx, const api::RemoveSnapshotRequest* req,
                                   google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      return service_->remove(scope, req->key());
    });
  }
  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* ctx, const api::StatSnapshotRequest* req,
                                 api::StatSnapshotResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      CTRD_ASSIGN_OR_RETURN(auto info, service_->stat(scope, req->key()));
      to_proto(info, resp->mutable_info());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx, const api::UpdateSnapshotRequest* req,
                                   api::UpdateSnapshotResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      sn::Info info;
      info.name = req->info().name();
      info.labels = {req->info().labels().begin(), req->info().labels().end()};
      std::vector<std::string> paths(req->update_mask().paths().begin(), req->update_mask().paths().end());
      CTRD_ASSIGN_OR_RETURN(auto updated, service_->update(scope, info, paths));
      to_proto(updated, resp->mutable_info());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerWriteReactor<api::ListSnapshotsResponse>* List(grpc::CallbackServerContext* ctx,
                                                             const api::ListSnapshotsRequest* req) override {
    auto scope = scope_of(*ctx, *req);
    if (!scope.ok()) return server::failed_stream<api::ListSnapshotsResponse>(scope.status());
    auto all = service_->list(*scope, {req->filters().begin(), req->filters().end()});
    if (!all.ok()) return server::failed_stream<api::ListSnapshotsResponse>(all.status());
    std::deque<api::ListSnapshotsResponse> batches;
    for (size_t i = 0; i < all->size(); ++i) {
      if (i % kListBatch == 0) batches.emplace_back();
      to_proto((*all)[i], batches.back().add_info());
    }
    return new server::ListWriter<api::ListSnapshotsResponse>(std::move(batches));
  }
  grpc::ServerUnaryReactor* Usage(grpc::CallbackServerContext* ctx, const api::UsageRequest* req,
                                  api::UsageResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      CTRD_ASSIGN_OR_RETURN(auto usage, service_->usage(scope, req->key()));
      resp->set_size(usage.size);
      resp->set_inodes(usage.inodes);
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Cleanup(grpc::CallbackServerContext* ctx, const api::CleanupRequest* req,
                                    google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto scope, scope_of(*ctx, *req));
      return service_->cleanup(scope);
    });
  }

 private:
  std::shared_ptr<SnapshotsService> service_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<SnapshotsService, metadata::DB>(
      registry, "snapshots-service", plugin::type::kMetadata,
      [](plugin::InitContext& ic, std::shared_ptr<metadata::DB> db) {
        return std::make_shared<SnapshotsService>(std::move(db), ic.events());
      });
  register_grpc_front_end<GrpcFrontEnd, SnapshotsService>(registry, "snapshots", "snapshots-service");
}

}  // namespace ctrd::services::snapshots
