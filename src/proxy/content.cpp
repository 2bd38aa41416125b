#include "proxy/content.h"

#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>

#include <algorithm>
#include <cstring>

#include "protobuf/time.h"

namespace ctrd::proxy {
namespace {

namespace api = containerd::services::content::v1;
namespace cs = ctrd::content;
using errdefs::Status;
using errdefs::StatusOr;

// Per Write message: well under the plugin's message size limit.
constexpr size_t kWriteChunk = 1 << 20;

cs::Info from_proto(const api::Info& i) {
  return {i.digest(),
          i.size(),
          protobuf::from_timestamp(i.created_at()),
          protobuf::from_timestamp(i.updated_at()),
          {i.labels().begin(), i.labels().end()}};
}

cs::Status from_proto(const api::Status& s) {
  return {s.ref(),
          s.offset(),
          s.total(),
          s.expected(),
          protobuf::from_timestamp(s.started_at()),
          protobuf::from_timestamp(s.updated_at())};
}

class RemoteReaderAt final : public cs::ReaderAt {
 public:
  RemoteReaderAt(std::shared_ptr<Connection> conn, std::shared_ptr<api::Content::Stub> stub,
                 std::string digest, int64_t size)
      : conn_(std::move(conn)), stub_(std::move(stub)), digest_(std::move(digest)), size_(size) {}

  StatusOr<size_t> read_at(char* buf, size_t n, int64_t offset) override {
    if (n == 0 || offset >= size_) return size_t{0};
    api::ReadContentRequest req;
    req.set_digest(digest_);
    req.set_offset(offset);
    req.set_size(static_cast<int64_t>(n));
    auto ctx = conn_->context();
    auto reader = stub_->Read(ctx.get(), req);
    api::ReadContentResponse resp;
    size_t got = 0;
    while (got < n && reader->Read(&resp)) {
      const size_t take = std::min(n - got, resp.data().size());
      resp.data().copy(buf + got, take);
      got += take;
    }
    if (got == n) {
      ctx->TryCancel();  // nothing more is wanted
      (void)reader->Finish();
      return got;
    }
    CTRD_RETURN_IF_ERROR(conn_->status(reader->Finish()));
    return got;
  }

  int64_t size() const override { return size_; }

 private:
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<api::Content::Stub> stub_;
  const std::string digest_;
  const int64_t size_;
};

// One Write stream, kept open for the writer's life: each request gets one
// response, as with containerd's remote writer.
class RemoteWriter final : public cs::Writer {
 public:
  RemoteWriter(
      std::shared_ptr<Connection> conn, std::unique_ptr<grpc::ClientContext> ctx,
      std::unique_ptr<grpc::ClientReaderWriter<api::WriteContentRequest, api::WriteContentResponse>> stream,
      const cs::WriterOptions& options)
      : conn_(std::move(conn)),
        ctx_(std::move(ctx)),
        stream_(std::move(stream)),
        ref_(options.ref),
        expected_(options.expected) {}

  ~RemoteWriter() override { close(); }

  // Sends the opening STAT; the ingest's stored offset is where writing resumes.
  Status open(const cs::WriterOptions& options) {
    api::WriteContentRequest req;
    req.set_action(api::STAT);
    req.set_ref(options.ref);
    req.set_total(options.total);
    req.set_expected(options.expected);
    CTRD_ASSIGN_OR_RETURN(auto resp, send(req));
    offset_ = resp.offset();
    return Status::Ok();
  }

  Status write(std::string_view data) override {
    do {
      const std::string_view chunk = data.substr(0, kWriteChunk);
      data.remove_prefix(chunk.size());
      api::WriteContentRequest req;
      req.set_action(api::WRITE);
      req.set_offset(offset_);
      req.set_data(std::string(chunk));
      CTRD_ASSIGN_OR_RETURN(auto resp, send(req));
      if (resp.offset() != offset_ + static_cast<int64_t>(chunk.size())) {
        return errdefs::DataLoss("short write to " + ref_ + ": offset " + std::to_string(resp.offset()) +
                                 ", want " + std::to_string(offset_ + static_cast<int64_t>(chunk.size())));
      }
      offset_ = resp.offset();
    } while (!data.empty());
    return Status::Ok();
  }

  std::string digest() override { return digest_; }

  StatusOr<cs::Status> status() override {
    api::WriteContentRequest req;
    req.set_action(api::STAT);
    CTRD_ASSIGN_OR_RETURN(auto resp, send(req));
    return cs::Status{ref_,
                      resp.offset(),
                      resp.total(),
                      expected_,
                      protobuf::from_timestamp(resp.started_at()),
                      protobuf::from_timestamp(resp.updated_at())};
  }

  Status truncate(int64_t size) override {
    if (size != 0) return errdefs::NotImplemented("truncating a remote ingest to a non-zero size");
    // A write at offset 0 makes the plugin start the ingest over.
    api::WriteContentRequest req;
    req.set_action(api::WRITE);
    req.set_offset(0);
    CTRD_ASSIGN_OR_RETURN(auto resp, send(req));
    offset_ = resp.offset();
    return Status::Ok();
  }

  Status commit(int64_t size, std::string_view expected, const cs::Labels& labels) override {
    api::WriteContentRequest req;
    req.set_action(api::COMMIT);
    req.set_offset(offset_);
    req.set_total(size);
    req.set_expected(std::string(expected));
    req.mutable_labels()->insert(labels.begin(), labels.end());
    auto resp = send(req);
    close();
    return resp.ok() ? Status::Ok() : resp.status();
  }

 private:
  StatusOr<api::WriteContentResponse> send(const api::WriteContentRequest& req) {
    if (!error_.ok()) return error_;
    api::WriteContentResponse resp;
    if (!stream_->Write(req) || !stream_->Read(&resp)) {
      // The plugin ended the stream; its status says why.
      (void)stream_->WritesDone();
      error_ = conn_->status(stream_->Finish());
      if (error_.ok()) error_ = errdefs::Unavailable("write stream for " + ref_ + " ended early");
      finished_ = true;
      return error_;
    }
    if (!resp.digest().empty()) digest_ = resp.digest();
    return resp;
  }

  // Ends the stream; the plugin closes its side of the ingest, which stays resumable.
  void close() {
    if (finished_) return;
    finished_ = true;
    (void)stream_->WritesDone();
    (void)stream_->Finish();
    if (error_.ok()) error_ = errdefs::FailedPrecondition("writer for " + ref_ + " is closed");
  }

  std::shared_ptr<Connection> conn_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<api::WriteContentRequest, api::WriteContentResponse>> stream_;
  const std::string ref_;
  const std::string expected_;
  int64_t offset_ = 0;
  std::string digest_;
  Status error_;
  bool finished_ = false;
};

class ProxyStore final : public cs::Store {
 public:
  explicit ProxyStore(std::shared_ptr<Connection> connection)
      : conn_(std::move(connection)), stub_(api::Content::NewStub(conn_->channel())) {}

  StatusOr<cs::Info> info(std::string_view digest) override {
    api::InfoRequest req;
    req.set_digest(std::string(digest));
    api::InfoResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Info(conn_->context().get(), req, &resp)));
    return from_proto(resp.info());
  }

  StatusOr<cs::Info> update(const cs::Info& info, const std::vector<std::string>& fieldpaths) override {
    api::UpdateRequest req;
    req.mutable_info()->set_digest(info.digest);
    req.mutable_info()->set_size(info.size);
    req.mutable_info()->mutable_labels()->insert(info.labels.begin(), info.labels.end());
    for (const auto& p : fieldpaths) req.mutable_update_mask()->add_paths(p);
    api::UpdateResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Update(conn_->context().get(), req, &resp)));
    return from_proto(resp.info());
  }

  Status walk(const std::function<Status(const cs::Info&)>& fn,
              const std::vector<std::string>& filters) override {
    api::ListContentRequest req;
    for (const auto& f : filters) req.add_filters(f);
    auto ctx = conn_->context();
    auto reader = stub_->List(ctx.get(), req);
    return conn_->read_list(*ctx, *reader, [&](const api::Info& info) { return fn(from_proto(info)); });
  }

  Status remove(std::string_view digest) override {
    api::DeleteContentRequest req;
    req.set_digest(std::string(digest));
    google::protobuf::Empty resp;
    return conn_->status(stub_->Delete(conn_->context().get(), req, &resp));
  }

  StatusOr<std::unique_ptr<cs::ReaderAt>> reader_at(std::string_view digest) override {
    CTRD_ASSIGN_OR_RETURN(cs::Info i, info(digest));
    return std::unique_ptr<cs::ReaderAt>(std::make_unique<RemoteReaderAt>(conn_, stub_, i.digest, i.size));
  }

  StatusOr<cs::Status> status(std::string_view ref) override {
    api::StatusRequest req;
    req.set_ref(std::string(ref));
    api::StatusResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->Status(conn_->context().get(), req, &resp)));
    return from_proto(resp.status());
  }

  StatusOr<std::vector<cs::Status>> list_statuses(const std::vector<std::string>& filters) override {
    api::ListStatusesRequest req;
    for (const auto& f : filters) req.add_filters(f);
    api::ListStatusesResponse resp;
    CTRD_RETURN_IF_ERROR(conn_->status(stub_->ListStatuses(conn_->context().get(), req, &resp)));
    std::vector<cs::Status> out;
    for (const auto& s : resp.statuses()) out.push_back(from_proto(s));
    return out;
  }

  Status abort(std::string_view ref) override {
    api::AbortRequest req;
    req.set_ref(std::string(ref));
    google::protobuf::Empty resp;
    return conn_->status(stub_->Abort(conn_->context().get(), req, &resp));
  }

  StatusOr<std::unique_ptr<cs::Writer>> writer(const cs::WriterOptions& options) override {
    if (options.ref.empty()) return errdefs::InvalidArgument("ref must not be empty");
    auto ctx = conn_->context();
    auto stream = stub_->Write(ctx.get());
    auto w = std::make_unique<RemoteWriter>(conn_, std::move(ctx), std::move(stream), options);
    CTRD_RETURN_IF_ERROR(w->open(options));
    return std::unique_ptr<cs::Writer>(std::move(w));
  }

 private:
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<api::Content::Stub> stub_;
};

}  // namespace

std::shared_ptr<content::Store> new_content_store(std::shared_ptr<Connection> connection) {
  return std::make_shared<ProxyStore>(std::move(connection));
}

}  // namespace ctrd::proxy
