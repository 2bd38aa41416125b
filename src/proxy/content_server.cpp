#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>

#include <algorithm>

#include "errdefs/grpc_status.h"
#include "protobuf/content.h"
#include "protobuf/time.h"
#include "proxy/server.h"

namespace ctrd::proxy {
namespace {

namespace api = containerd::services::content::v1;
namespace cs = ctrd::content;
using errdefs::Status;
using errdefs::to_grpc;
using protobuf::content::check_digest;
using protobuf::content::to_proto;
using protobuf::content::WriteSession;

constexpr size_t kReadChunk = 1 << 20;  // as containerd's read buffer
constexpr int kListBatch = 100;

class ContentServer final : public api::Content::Service {
 public:
  explicit ContentServer(std::shared_ptr<cs::Store> store) : store_(std::move(store)) {}

  grpc::Status Info(grpc::ServerContext*, const api::InfoRequest* req, api::InfoResponse* resp) override {
    if (auto s = check_digest(req->digest()); !s.ok()) return to_grpc(s);
    auto info = store_->info(req->digest());
    if (!info.ok()) return to_grpc(info.status());
    to_proto(*info, resp->mutable_info());
    return grpc::Status::OK;
  }

  grpc::Status Update(grpc::ServerContext*, const api::UpdateRequest* req,
                      api::UpdateResponse* resp) override {
    if (auto s = check_digest(req->info().digest()); !s.ok()) return to_grpc(s);
    cs::Info in;
    in.digest = req->info().digest();
    in.labels = {req->info().labels().begin(), req->info().labels().end()};
    auto info = store_->update(in, {req->update_mask().paths().begin(), req->update_mask().paths().end()});
    if (!info.ok()) return to_grpc(info.status());
    to_proto(*info, resp->mutable_info());
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*, const api::ListContentRequest* req,
                    grpc::ServerWriter<api::ListContentResponse>* writer) override {
    api::ListContentResponse batch;
    auto s = store_->walk(
        [&](const cs::Info& info) {
          to_proto(info, batch.add_info());
          if (batch.info_size() < kListBatch) return Status::Ok();
          if (!writer->Write(batch)) return errdefs::Canceled("client went away");
          batch.Clear();
          return Status::Ok();
        },
        {req->filters().begin(), req->filters().end()});
    if (!s.ok()) return to_grpc(s);
    if (batch.info_size() > 0 && !writer->Write(batch))
      return {grpc::StatusCode::CANCELLED, "client went away"};
    return grpc::Status::OK;
  }

  grpc::Status Delete(grpc::ServerContext*, const api::DeleteContentRequest* req,
                      google::protobuf::Empty*) override {
    if (auto s = check_digest(req->digest()); !s.ok()) return to_grpc(s);
    return to_grpc(store_->remove(req->digest()));
  }

  grpc::Status Read(grpc::ServerContext* ctx, const api::ReadContentRequest* req,
                    grpc::ServerWriter<api::ReadContentResponse>* writer) override {
    if (auto s = check_digest(req->digest()); !s.ok()) return to_grpc(s);
    auto info = store_->info(req->digest());
    if (!info.ok()) return to_grpc(info.status());
    auto reader = store_->reader_at(req->digest());
    if (!reader.ok()) return to_grpc(reader.status());
    int64_t offset = std::max<int64_t>(req->offset(), 0);
    if (offset > info->size) {
      return to_grpc(errdefs::OutOfRange("read past object length " + std::to_string(info->size) + " bytes"));
    }
    int64_t size = req->size();
    if (size <= 0 || offset + size > info->size) size = info->size - offset;
    const int64_t end = offset + size;
    api::ReadContentResponse message;
    while (offset < end) {
      if (ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "client went away"};
      const size_t want = static_cast<size_t>(std::min<int64_t>(kReadChunk, end - offset));
      std::string* data = message.mutable_data();
      data->resize(want);
      auto n = (*reader)->read_at(data->data(), want, offset);
      if (!n.ok()) return to_grpc(n.status());
      if (*n == 0) return to_grpc(errdefs::DataLoss("blob ended early"));
      data->resize(*n);
      message.set_offset(offset);
      offset += static_cast<int64_t>(*n);
      if (!writer->Write(message)) return {grpc::StatusCode::CANCELLED, "client went away"};
    }
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const api::StatusRequest* req,
                      api::StatusResponse* resp) override {
    auto st = store_->status(req->ref());
    if (!st.ok()) return to_grpc(st.status());
    to_proto(*st, resp->mutable_status());
    return grpc::Status::OK;
  }

  grpc::Status ListStatuses(grpc::ServerContext*, const api::ListStatusesRequest* req,
                            api::ListStatusesResponse* resp) override {
    auto all = store_->list_statuses({req->filters().begin(), req->filters().end()});
    if (!all.ok()) return to_grpc(all.status());
    for (const auto& st : *all) to_proto(st, resp->add_statuses());
    return grpc::Status::OK;
  }

  grpc::Status Write(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<api::WriteContentResponse, api::WriteContentRequest>* stream) override {
    WriteSession session(store_);
    api::WriteContentRequest req;
    api::WriteContentResponse resp;
    while (stream->Read(&req)) {
      bool committed = false;
      if (auto s = session.handle(req, resp, committed); !s.ok()) {
        session.close();
        return to_grpc(s);
      }
      if (!stream->Write(resp)) return {grpc::StatusCode::CANCELLED, "client went away"};
      if (committed) break;
    }
    session.close();
    return grpc::Status::OK;
  }

  grpc::Status Abort(grpc::ServerContext*, const api::AbortRequest* req, google::protobuf::Empty*) override {
    return to_grpc(store_->abort(req->ref()));
  }

 private:
  std::shared_ptr<cs::Store> store_;
};

}  // namespace

std::unique_ptr<grpc::Service> content_service(std::shared_ptr<content::Store> store) {
  return std::make_unique<ContentServer>(std::move(store));
}

}  // namespace ctrd::proxy
