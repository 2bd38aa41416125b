#include "proxy/diff.h"

#include <github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h>

#include "protobuf/types.h"

namespace ctrd::proxy {
namespace {

namespace api = containerd::services::diff::v1;
namespace df = ctrd::diff;

class ProxyDiffer final : public df::Differ {
 public:
  explicit ProxyDiffer(std::shared_ptr<Connection> connection)
      : conn_(std::move(connection)), stub_(api::Diff::NewStub(conn_->channel())) {}

  errdefs::StatusOr<df::Descriptor> apply(const df::ApplyRequest& request) override {
    api::ApplyRequest req;
    protobuf::to_proto(request.layer, req.mutable_diff());
    protobuf::to_proto(request.mounts, req.mutable_mounts());
    api::ApplyResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Apply(conn_->context(request.ns).get(), req, &resp)));
    return protobuf::from_proto(resp.applied());
  }

  errdefs::StatusOr<df::Descriptor> compare(const df::CompareRequest& request) override {
    api::DiffRequest req;
    protobuf::to_proto(request.lower, req.mutable_left());
    protobuf::to_proto(request.upper, req.mutable_right());
    req.set_media_type(request.media_type);
    req.set_ref(request.ref);
    req.mutable_labels()->insert(request.labels.begin(), request.labels.end());
    api::DiffResponse resp;
    CTRD_RETURN_IF_ERROR(
        conn_->status(stub_->Diff(conn_->context(request.ns, request.lease).get(), req, &resp)));
    return protobuf::from_proto(resp.diff());
  }

 private:
  std::shared_ptr<Connection> conn_;
  std::unique_ptr<api::Diff::Stub> stub_;
};

}  // namespace

std::shared_ptr<diff::Differ> new_differ(std::shared_ptr<Connection> connection) {
  return std::make_shared<ProxyDiffer>(std::move(connection));
}

}  // namespace ctrd::proxy
