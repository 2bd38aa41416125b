#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>

#include "metrics/grpc_server_metrics.h"

namespace ctrd::metrics {
namespace {

namespace content = containerd::services::content::v1;
namespace version = containerd::services::version::v1;

class VersionService final : public version::Version::Service {
 public:
  grpc::Status status = grpc::Status::OK;
  grpc::Status Version(grpc::ServerContext*, const google::protobuf::Empty*,
                       version::VersionResponse* resp) override {
    resp->set_version("test");
    return status;
  }
};

class ContentService final : public content::Content::Service {
 public:
  // Sends `size` one-byte chunks.
  grpc::Status Read(grpc::ServerContext*, const content::ReadContentRequest* req,
                    grpc::ServerWriter<content::ReadContentResponse>* writer) override {
    for (int64_t i = 0; i < req->size(); ++i) {
      content::ReadContentResponse r;
      r.set_offset(i);
      r.set_data("x");
      writer->Write(r);
    }
    return grpc::Status::OK;
  }
  // Answers every message, then fails with Aborted.
  grpc::Status Write(grpc::ServerContext*,
                     grpc::ServerReaderWriter<content::WriteContentResponse, content::WriteContentRequest>*
                         stream) override {
    content::WriteContentRequest req;
    while (stream->Read(&req)) {
      content::WriteContentResponse resp;
      resp.set_offset(req.offset());
      stream->Write(resp);
    }
    return grpc::Status(grpc::StatusCode::ABORTED, "done");
  }
};

class GrpcMetricsTest : public ::testing::Test {
 protected:
  void start(bool histogram) {
    metrics_ = GrpcServerMetrics::create(registry_, histogram);
    grpc::ServerBuilder builder;
    builder.RegisterService(&version_);
    builder.RegisterService(&content_);
    builder.SetOption(metrics_->preregister_option());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(metrics_->interceptor_factory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_);
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }
  // Every call's interceptor has run to its end once the server is down.
  void stop() {
    if (!server_) return;
    server_->Shutdown();
    server_->Wait();
    server_.reset();
  }
  void TearDown() override { stop(); }

  grpc::StatusCode call_version() {
    grpc::ClientContext ctx;
    google::protobuf::Empty req;
    version::VersionResponse resp;
    return version::Version::NewStub(channel_)->Version(&ctx, req, &resp).error_code();
  }

  // The value of one rendered series ("name{labels}"), or -1 when absent.
  double value(const std::string& series) {
    const std::string text = "\n" + registry_->render();
    const auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return -1;
    return std::stod(text.substr(pos + series.size() + 2));
  }

  std::shared_ptr<Registry> registry_ = Registry::create();
  std::shared_ptr<GrpcServerMetrics> metrics_;
  VersionService version_;
  ContentService content_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

constexpr const char* kVersionLabels =
    "grpc_method=\"Version\",grpc_service=\"containerd.services.version.v1.Version\",grpc_type=\"unary\"";

TEST(GrpcCodeName, MatchesGo) {
  EXPECT_EQ(grpc_code_name(0), "OK");
  EXPECT_EQ(grpc_code_name(1), "Canceled");
  EXPECT_EQ(grpc_code_name(4), "DeadlineExceeded");
  EXPECT_EQ(grpc_code_name(12), "Unimplemented");
  EXPECT_EQ(grpc_code_name(16), "Unauthenticated");
  EXPECT_EQ(grpc_code_name(99), "Unknown");
}

TEST_F(GrpcMetricsTest, RegisteredMethodsStartAtZero) {
  start(false);
  EXPECT_EQ(value(std::string("grpc_server_started_total{") + kVersionLabels + "}"), 0);
  EXPECT_EQ(value("grpc_server_handled_total{grpc_code=\"NotFound\",grpc_method=\"Info\","
                  "grpc_service=\"containerd.services.content.v1.Content\",grpc_type=\"unary\"}"),
            0);
  EXPECT_EQ(value("grpc_server_started_total{grpc_method=\"Write\","
                  "grpc_service=\"containerd.services.content.v1.Content\",grpc_type=\"bidi_stream\"}"),
            0);
  EXPECT_EQ(registry_->render().find("grpc_server_handling_seconds"), std::string::npos);
}

TEST_F(GrpcMetricsTest, CountsUnaryCallsByCode) {
  start(false);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call_version(), grpc::StatusCode::OK);
  version_.status = grpc::Status(grpc::StatusCode::NOT_FOUND, "nope");
  EXPECT_EQ(call_version(), grpc::StatusCode::NOT_FOUND);
  stop();
  EXPECT_EQ(value(std::string("grpc_server_started_total{") + kVersionLabels + "}"), 4);
  EXPECT_EQ(value(std::string("grpc_server_handled_total{grpc_code=\"OK\",") + kVersionLabels + "}"), 3);
  EXPECT_EQ(value(std::string("grpc_server_handled_total{grpc_code=\"NotFound\",") + kVersionLabels + "}"),
            1);
  EXPECT_EQ(value(std::string("grpc_server_handled_total{grpc_code=\"Internal\",") + kVersionLabels + "}"),
            0);
  EXPECT_EQ(value(std::string("grpc_server_msg_received_total{") + kVersionLabels + "}"), 4);
  // A failed unary call sends no response message.
  EXPECT_EQ(value(std::string("grpc_server_msg_sent_total{") + kVersionLabels + "}"), 3);
}

TEST_F(GrpcMetricsTest, CountsServerStreamMessages) {
  start(false);
  grpc::ClientContext ctx;
  content::ReadContentRequest req;
  req.set_size(5);
  auto reader = content::Content::NewStub(channel_)->Read(&ctx, req);
  content::ReadContentResponse resp;
  int got = 0;
  while (reader->Read(&resp)) ++got;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(got, 5);
  stop();
  const std::string labels =
      "grpc_method=\"Read\",grpc_service=\"containerd.services.content.v1.Content\",grpc_type=\"server_"
      "stream\"";
  EXPECT_EQ(value("grpc_server_started_total{" + labels + "}"), 1);
  EXPECT_EQ(value("grpc_server_msg_received_total{" + labels + "}"), 1);
  EXPECT_EQ(value("grpc_server_msg_sent_total{" + labels + "}"), 5);
  EXPECT_EQ(value("grpc_server_handled_total{grpc_code=\"OK\"," + labels + "}"), 1);
}

TEST_F(GrpcMetricsTest, CountsBidiStreamMessages) {
  start(false);
  grpc::ClientContext ctx;
  auto stream = content::Content::NewStub(channel_)->Write(&ctx);
  for (int i = 0; i < 3; ++i) {
    content::WriteContentRequest req;
    req.set_offset(i);
    ASSERT_TRUE(stream->Write(req));
    content::WriteContentResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
  }
  stream->WritesDone();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::ABORTED);
  stop();
  const std::string labels =
      "grpc_method=\"Write\",grpc_service=\"containerd.services.content.v1.Content\",grpc_type=\"bidi_"
      "stream\"";
  EXPECT_EQ(value("grpc_server_msg_received_total{" + labels + "}"), 3);
  EXPECT_EQ(value("grpc_server_msg_sent_total{" + labels + "}"), 3);
  EXPECT_EQ(value("grpc_server_handled_total{grpc_code=\"Aborted\"," + labels + "}"), 1);
  EXPECT_EQ(value("grpc_server_handled_total{grpc_code=\"OK\"," + labels + "}"), 0);
}

TEST_F(GrpcMetricsTest, HandlingHistogramWhenEnabled) {
  start(true);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(call_version(), grpc::StatusCode::OK);
  stop();
  EXPECT_EQ(value(std::string("grpc_server_handling_seconds_count{") + kVersionLabels + "}"), 2);
  EXPECT_EQ(value(std::string("grpc_server_handling_seconds_bucket{") + kVersionLabels + ",le=\"+Inf\"}"), 2);
  EXPECT_EQ(
      value(std::string("grpc_server_handling_seconds_bucket{") + kVersionLabels + ",le=\"0.005\"}") >= 0,
      true);
  EXPECT_EQ(value(std::string("grpc_server_handling_seconds_bucket{") + kVersionLabels + ",le=\"10\"}"), 2);
}

TEST_F(GrpcMetricsTest, UnknownMethodsGetNoSeries) {
  start(false);
  EXPECT_EQ(metrics_->series("/made.Up/Method"), nullptr);
  EXPECT_EQ(metrics_->series("garbage"), nullptr);
  EXPECT_EQ(metrics_->series("/containerd.services.version.v1.Version/Nope"), nullptr);
  auto* s = metrics_->series("/containerd.services.version.v1.Version/Version");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s, metrics_->series("/containerd.services.version.v1.Version/Version"));
}

TEST_F(GrpcMetricsTest, SeriesAreCreatedLazilyWithoutPreregistration) {
  auto m = GrpcServerMetrics::create(registry_, false);
  auto* s = m->series("/containerd.services.content.v1.Content/List");
  ASSERT_NE(s, nullptr);
  s->started->inc();
  EXPECT_EQ(value("grpc_server_started_total{grpc_method=\"List\","
                  "grpc_service=\"containerd.services.content.v1.Content\",grpc_type=\"server_stream\"}"),
            1);
  EXPECT_FALSE(m->preregister("no.Such").ok());
}

}  // namespace
}  // namespace ctrd::metrics
