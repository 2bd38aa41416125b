#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>

#include "errdefs/grpc_status.h"
#include "protobuf/time.h"
#include "protobuf/types.h"
#include "proxy/server.h"

namespace ctrd::proxy {
namespace {

namespace api = containerd::services::snapshots::v1;
namespace sn = ctrd::snapshots;
using errdefs::to_grpc;

// As containerd's List: infos in batches of this many per message.
constexpr int kListBatch = 100;

void to_proto(const sn::Info& i, api::Info* out) {
  out->set_name(i.name);
  out->set_parent(i.parent);
  out->set_kind(static_cast<api::Kind>(i.kind));
  *out->mutable_created_at() = protobuf::to_timestamp(i.created_at);
  *out->mutable_updated_at() = protobuf::to_timestamp(i.updated_at);
  out->mutable_labels()->insert(i.labels.begin(), i.labels.end());
}

template <typename Map>
sn::Labels labels_of(const Map& m) {
  return {m.begin(), m.end()};
}

template <typename Response>
grpc::Status reply_mounts(const errdefs::StatusOr<std::vector<mount::Mount>>& mounts, Response* resp) {
  if (!mounts.ok()) return to_grpc(mounts.status());
  protobuf::to_proto(*mounts, resp->mutable_mounts());
  return grpc::Status::OK;
}

class SnapshotsServer final : public api::Snapshots::Service {
 public:
  explicit SnapshotsServer(std::shared_ptr<sn::Snapshotter> s) : sn_(std::move(s)) {}

  grpc::Status Prepare(grpc::ServerContext*, const api::PrepareSnapshotRequest* req,
                       api::PrepareSnapshotResponse* resp) override {
    return reply_mounts(sn_->prepare(req->key(), req->parent(), labels_of(req->labels())), resp);
  }
  grpc::Status View(grpc::ServerContext*, const api::ViewSnapshotRequest* req,
                    api::ViewSnapshotResponse* resp) override {
    return reply_mounts(sn_->view(req->key(), req->parent(), labels_of(req->labels())), resp);
  }
  grpc::Status Mounts(grpc::ServerContext*, const api::MountsRequest* req,
                      api::MountsResponse* resp) override {
    return reply_mounts(sn_->mounts(req->key()), resp);
  }
  grpc::Status Commit(grpc::ServerContext*, const api::CommitSnapshotRequest* req,
                      google::protobuf::Empty*) override {
    return to_grpc(sn_->commit(req->name(), req->key(), labels_of(req->labels())));
  }
  grpc::Status Remove(grpc::ServerContext*, const api::RemoveSnapshotRequest* req,
                      google::protobuf::Empty*) override {
    return to_grpc(sn_->remove(req->key()));
  }
  grpc::Status Stat(grpc::ServerContext*, const api::StatSnapshotRequest* req,
                    api::StatSnapshotResponse* resp) override {
    auto info = sn_->stat(req->key());
    if (!info.ok()) return to_grpc(info.status());
    to_proto(*info, resp->mutable_info());
    return grpc::Status::OK;
  }
  grpc::Status Update(grpc::ServerContext*, const api::UpdateSnapshotRequest* req,
                      api::UpdateSnapshotResponse* resp) override {
    sn::Info in;
    in.name = req->info().name();
    in.labels = labels_of(req->info().labels());
    auto info = sn_->update(in, {req->update_mask().paths().begin(), req->update_mask().paths().end()});
    if (!info.ok()) return to_grpc(info.status());
    to_proto(*info, resp->mutable_info());
    return grpc::Status::OK;
  }
  grpc::Status List(grpc::ServerContext*, const api::ListSnapshotsRequest* req,
                    grpc::ServerWriter<api::ListSnapshotsResponse>* writer) override {
    api::ListSnapshotsResponse batch;
    auto s = sn_->walk(
        [&](const sn::Info& info) {
          to_proto(info, batch.add_info());
          if (batch.info_size() < kListBatch) return errdefs::Status::Ok();
          if (!writer->Write(batch)) return errdefs::Canceled("client went away");
          batch.Clear();
          return errdefs::Status::Ok();
        },
        {req->filters().begin(), req->filters().end()});
    if (!s.ok()) return to_grpc(s);
    if (batch.info_size() > 0 && !writer->Write(batch))
      return {grpc::StatusCode::CANCELLED, "client went away"};
    return grpc::Status::OK;
  }
  grpc::Status Usage(grpc::ServerContext*, const api::UsageRequest* req, api::UsageResponse* resp) override {
    auto usage = sn_->usage(req->key());
    if (!usage.ok()) return to_grpc(usage.status());
    resp->set_size(usage->size);
    resp->set_inodes(usage->inodes);
    return grpc::Status::OK;
  }
  grpc::Status Cleanup(grpc::ServerContext*, const api::CleanupRequest*, google::protobuf::Empty*) override {
    return to_grpc(sn_->cleanup());
  }

 private:
  std::shared_ptr<sn::Snapshotter> sn_;
};

}  // namespace

std::unique_ptr<grpc::Service> snapshots_service(std::shared_ptr<snapshots::Snapshotter> snapshotter) {
  return std::make_unique<SnapshotsServer>(std::move(snapshotter));
}

}  // namespace ctrd::proxy
