#include "proxy/snapshotter.h"

#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>

#include "protobuf/time.h"
#include "protobuf/types.h"

namespace ctrd::proxy {
namespace {

namespace api = containerd::services::snapshots::v1;
namespace sn = ctrd::snapshots;
using errdefs::Status;
using errdefs::StatusOr;

sn::Info from_proto(const api::Info& i) {
  sn::Info out;
  out.name = i.name();
  out.parent = i.parent();
  out.kind = static_cast<sn::Kind>(i.kind());
  out.labels = {i.labels().begin(), i.labels().end()};
  out.created_at = protobuf::from_timestamp(i.created_at());
  out.updated_at = protobuf::from_timestamp(i.updated_at());
  return out;
}

class ProxySnapshotter final : public sn::Snapshotter {
 public:
  ProxySnapshotter(std::shared_ptr<Connection> connection, std::string name)
      : conn_(std::move(connection)),
        name_(std::move(name)),
        stub_(api::Snapshots::NewStub(conn_->channel())) {}

  StatusOr<sn::Info> stat(std::string_view key) override {
    api::StatSnapshotRequest req;
    req.set_snapshotter(name_);
    req.set_key(std::string(key));
    api::StatSnapshotResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Stat(conn_->context().get(), req, &resp)));
    return from_proto(resp.info());
  }

  StatusOr<sn::Info> update(const sn::Info& info, const std::vector<std::string>& fieldpaths) override {
    api::UpdateSnapshotRequest req;
    req.set_snapshotter(name_);
    auto* i = req.mutable_info();
    i->set_name(info.name);
    i->set_parent(info.parent);
    i->set_kind(static_cast<api::Kind>(info.kind));
    i->mutable_labels()->insert(info.labels.begin(), info.labels.end());
    for (const auto& p : fieldpaths) req.mutable_update_mask()->add_paths(p);
    api::UpdateSnapshotResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Update(conn_->context().get(), req, &resp)));
    return from_proto(resp.info());
  }

  StatusOr<sn::Usage> usage(std::string_view key) override {
    api::UsageRequest req;
    req.set_snapshotter(name_);
    req.set_key(std::string(key));
    api::UsageResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Usage(conn_->context().get(), req, &resp)));
    return sn::Usage{resp.size(), resp.inodes()};
  }

  StatusOr<std::vector<mount::Mount>> mounts(std::string_view key) override {
    api::MountsRequest req;
    req.set_snapshotter(name_);
    req.set_key(std::string(key));
    api::MountsResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Mounts(conn_->context().get(), req, &resp)));
    return protobuf::from_proto(resp.mounts());
  }

  StatusOr<std::vector<mount::Mount>> prepare(std::string_view key, std::string_view parent,
                                              const sn::Labels& labels) override {
    api::PrepareSnapshotRequest req;
    req.set_snapshotter(name_);
    req.set_key(std::string(key));
    req.set_parent(std::string(parent));
    req.mutable_labels()->insert(labels.begin(), labels.end());
    api::PrepareSnapshotResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Prepare(conn_->context().get(), req, &resp)));
    return protobuf::from_proto(resp.mounts());
  }

  StatusOr<std::vector<mount::Mount>> view(std::string_view key, std::string_view parent,
                                           const sn::Labels& labels) override {
    api::ViewSnapshotRequest req;
    req.set_snapshotter(name_);
    req.set_key(std::string(key));
    req.set_parent(std::string(parent));
    req.mutable_labels()->insert(labels.begin(), labels.end());
    api::ViewSnapshotResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->View(conn_->context().get(), req, &resp)));
    return protobuf::from_proto(resp.mounts());
  }

  Status commit(std::string_view name, std::string_view key, const sn::Labels& labels) override {
    api::CommitSnapshotRequest req;
    req.set_snapshotter(name_);
    req.set_name(std::string(name));
    req.set_key(std::string(key));
    req.mutable_labels()->insert(labels.begin(), labels.end());
    google::protobuf::Empty resp;
    return conn_->status(stub_->Commit(conn_->context().get(), req, &resp));
  }

  Status remove(std::string_view key) override {
    api::RemoveSnapshotRequest req;
    req.set_snapshotter(name_);
    req.set_key(std::string(key));
    google::protobuf::Empty resp;
    return conn_->status(stub_->Remove(conn_->context().get(), req, &resp));
  }

  Status walk(const std::function<Status(const sn::Info&)>& fn,
              const std::vector<std::string>& filters) override {
    api::ListSnapshotsRequest req;
    req.set_snapshotter(name_);
    for (const auto& f : filters) req.add_filters(f);
    auto ctx = conn_->context();
    auto reader = stub_->List(ctx.get(), req);
    return conn_->read_list(*ctx, *reader, [&](const api::Info& info) { return fn(from_proto(info)); });
  }

  Status cleanup() override {
    api::CleanupRequest req;
    req.set_snapshotter(name_);
    google::protobuf::Empty resp;
    return conn_->status(stub_->Cleanup(conn_->context().get(), req, &resp));
  }

 private:
  std::shared_ptr<Connection> conn_;
  const std::string name_;
  std::unique_ptr<api::Snapshots::Stub> stub_;
};

}  // namespace

std::shared_ptr<snapshots::Snapshotter> new_snapshotter(std::shared_ptr<Connection> connection,
                                                        std::string name) {
  return std::make_shared<ProxySnapshotter>(std::move(connection), std::move(name));
}

}  // namespace ctrd::proxy
