#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include <deque>

#include "log/log.h"
#include "protobuf/content.h"
#include "protobuf/time.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/stream.h"
#include "server/unary.h"
#include "services/content/content.h"
#include "services/registration.h"

namespace ctrd::services::content {
namespace {

using protobuf::content::check_digest;
using protobuf::content::to_proto;
using protobuf::content::WriteSession;

namespace api = containerd::services::content::v1;
namespace store = ctrd::content;

constexpr size_t kReadChunk = 1 << 20;  // as containerd's read buffer
constexpr int kListBatch = 100;

using server::failed_stream;
using server::ListWriter;

// Streams [offset, offset+size) of a blob in 1 MiB messages.
class ReadReactor final : public grpc::ServerWriteReactor<api::ReadContentResponse> {
 public:
  ReadReactor(std::unique_ptr<store::ReaderAt> reader, int64_t offset, int64_t end)
      : reader_(std::move(reader)), offset_(offset), end_(end) {
    next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    next();
  }
  void OnDone() override { delete this; }

 private:
  void next() {
    if (offset_ >= end_) return Finish(grpc::Status::OK);
    const size_t want = static_cast<size_t>(std::min<int64_t>(kReadChunk, end_ - offset_));
    std::string* data = message_.mutable_data();
    data->resize(want);
    auto n = reader_->read_at(data->data(), want, offset_);
    if (!n.ok()) return Finish(errdefs::to_grpc(n.status()));
    if (*n == 0) return Finish(errdefs::to_grpc(errdefs::DataLoss("blob ended early")));
    data->resize(*n);
    message_.set_offset(offset_);
    offset_ += static_cast<int64_t>(*n);
    StartWrite(&message_);
  }

  std::unique_ptr<store::ReaderAt> reader_;
  int64_t offset_;
  const int64_t end_;
  api::ReadContentResponse message_;
};

// One Write session: stat / write / commit requests, one response each.
class WriteReactor final
    : public grpc::ServerBidiReactor<api::WriteContentRequest, api::WriteContentResponse> {
 public:
  WriteReactor(std::shared_ptr<store::Store> store) : session_(std::move(store)) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) return finish(grpc::Status::OK);  // the client closed its side
    auto s = session_.handle(request_, response_, committed_);
    if (!s.ok()) {
      if (!errdefs::IsAlreadyExists(s))
        log::debug("content write failed", {{"ref", session_.ref()}, {"error", s.message()}});
      return finish(errdefs::to_grpc(s));
    }
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    if (committed_) return finish(grpc::Status::OK);
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  // The ref goes before the status is sent, not at OnDone.
  void finish(const grpc::Status& status) {
    session_.close();
    Finish(status);
  }

  WriteSession session_;
  api::WriteContentRequest request_;
  api::WriteContentResponse response_;
  bool committed_ = false;
};

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Content::CallbackService> {
 public:
  explicit GrpcFrontEnd(std::shared_ptr<ContentService> s) : service_(std::move(s)) {}

  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx, const api::InfoRequest* req,
                                 api::InfoResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_RETURN_IF_ERROR(check_digest(req->digest()));
      CTRD_ASSIGN_OR_RETURN(auto store, store_for(ctx));
      CTRD_ASSIGN_OR_RETURN(auto info, store->info(req->digest()));
      to_proto(info, resp->mutable_info());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx, const api::UpdateRequest* req,
                                   api::UpdateResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_RETURN_IF_ERROR(check_digest(req->info().digest()));
      CTRD_ASSIGN_OR_RETURN(auto store, store_for(ctx));
      store::Info in;
      in.digest = req->info().digest();
      in.labels = {req->info().labels().begin(), req->info().labels().end()};
      CTRD_ASSIGN_OR_RETURN(auto info, store->update(in, {req->update_mask().paths().begin(),
                                                          req->update_mask().paths().end()}));
      to_proto(info, resp->mutable_info());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerWriteReactor<api::ListContentResponse>* List(grpc::CallbackServerContext* ctx,
                                                           const api::ListContentRequest* req) override {
    auto store = store_for(ctx);
    if (!store.ok()) return failed_stream<api::ListContentResponse>(store.status());
    std::deque<api::ListContentResponse> batches;
    auto s = (*store)->walk(
        [&](const store::Info& info) {
          if (batches.empty() || batches.back().info_size() >= kListBatch) batches.emplace_back();
          to_proto(info, batches.back().add_info());
          return errdefs::Status::Ok();
        },
        {req->filters().begin(), req->filters().end()});
    if (!s.ok()) return failed_stream<api::ListContentResponse>(s);
    return new ListWriter<api::ListContentResponse>(std::move(batches));
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const api::DeleteContentRequest* req,
                                   google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_RETURN_IF_ERROR(check_digest(req->digest()));
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      return service_->remove(ns, req->digest());
    });
  }

  grpc::ServerWriteReactor<api::ReadContentResponse>* Read(grpc::CallbackServerContext* ctx,
                                                           const api::ReadContentRequest* req) override {
    auto start = [&]() -> errdefs::StatusOr<ReadReactor*> {
      CTRD_RETURN_IF_ERROR(check_digest(req->digest()));
      CTRD_ASSIGN_OR_RETURN(auto store, store_for(ctx));
      CTRD_ASSIGN_OR_RETURN(auto info, store->info(req->digest()));
      CTRD_ASSIGN_OR_RETURN(auto reader, store->reader_at(req->digest()));
      const int64_t offset = std::max<int64_t>(req->offset(), 0);
      if (offset > info.size) {
        return errdefs::OutOfRange("read past object length " + std::to_string(info.size) + " bytes");
      }
      int64_t size = req->size();
      if (size <= 0 || offset + size > info.size) size = info.size - offset;
      return new ReadReactor(std::move(reader), offset, offset + size);
    };
    auto r = start();
    if (!r.ok()) return failed_stream<api::ReadContentResponse>(r.status());
    return *r;
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const api::StatusRequest* req,
                                   api::StatusResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto store, store_for(ctx));
      CTRD_ASSIGN_OR_RETURN(auto st, store->status(req->ref()));
      to_proto(st, resp->mutable_status());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ListStatuses(grpc::CallbackServerContext* ctx,
                                         const api::ListStatusesRequest* req,
                                         api::ListStatusesResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto store, store_for(ctx));
      CTRD_ASSIGN_OR_RETURN(auto all, store->list_statuses({req->filters().begin(), req->filters().end()}));
      for (const auto& st : all) to_proto(st, resp->add_statuses());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerBidiReactor<api::WriteContentRequest, api::WriteContentResponse>* Write(
      grpc::CallbackServerContext* ctx) override {
    auto store = store_for(ctx);
    if (!store.ok()) {
      struct Failed final : grpc::ServerBidiReactor<api::WriteContentRequest, api::WriteContentResponse> {
        explicit Failed(const grpc::Status& st) { Finish(st); }
        void OnDone() override { delete this; }
      };
      return new Failed(errdefs::to_grpc(store.status()));
    }
    return new WriteReactor(*store);
  }

  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* ctx, const api::AbortRequest* req,
                                  google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto store, store_for(ctx));
      return store->abort(req->ref());
    });
  }

 private:
  errdefs::StatusOr<std::shared_ptr<store::Store>> store_for(grpc::CallbackServerContext* ctx) const {
    CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
    return service_->store(ns, server::lease_of(*ctx));
  }

  std::shared_ptr<ContentService> service_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<ContentService, metadata::DB>(
      registry, "content-service", plugin::type::kMetadata,
      [](plugin::InitContext& ic, std::shared_ptr<metadata::DB> db) {
        return std::make_shared<ContentService>(std::move(db), ic.events());
      });
  register_grpc_front_end<GrpcFrontEnd, ContentService>(registry, "content", "content-service");
}

}  // namespace ctrd::services::content
