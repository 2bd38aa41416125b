// SIGTERM always ends the daemon, whatever its clients did: subscribers that
// came and went while events flowed, streaming calls cancelled mid-flight,
// clients that stopped reading or vanished, writes left half-done, and running
// containers (which live on: their shims are not the daemon's to stop).
// "Ended" means ended by draining ("stopped" in the log), not by the
// watchdog's last resort, and well within the shutdown limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <google/protobuf/empty.pb.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

namespace containers_api = containerd::services::containers::v1;
namespace content_api = containerd::services::content::v1;
namespace events_api = containerd::services::events::v1;
namespace tasks_api = containerd::services::tasks::v1;

// The daemon's own limit is 10 s; a drained shutdown takes a fraction of that.
constexpr auto kDrainBound = 12s;

// SIGTERM, then: the daemon exited 0 within the bound, by draining every call.
void expect_drained_stop(Daemon& d) {
  const auto started = std::chrono::steady_clock::now();
  auto code = d.stop(kDrainBound);
  ASSERT_TRUE(code.has_value()) << "still running " << kDrainBound.count() << "s after SIGTERM\n" << d.log();
  EXPECT_EQ(*code, 0) << d.log();
  EXPECT_THAT(d.log(), HasSubstr("msg=\"stopped\"")) << "shutdown did not drain";
  EXPECT_THAT(d.log(), Not(HasSubstr("did not drain")));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ::testing::Test::RecordProperty("stop_seconds", std::to_string(secs));
  std::cout << "stopped in " << secs << " s\n";
}

// Publishes namespace events through the API until destroyed: the stream of
// writes that subscribers are cancelled in the middle of.
class EventFlood {
 public:
  explicit EventFlood(Daemon& d) : d_(d) {
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this, stub = events_api::Events::NewStub(d_.channel())] {
        containerd::services::events::v1::PublishRequest req;
        req.set_topic("/flood/tick");
        req.mutable_event()->set_type_url("containerd.events.NamespaceUpdate");
        google::protobuf::Empty resp;
        while (!stop_) {
          auto ctx = context_for("flood");
          ctx->set_deadline(std::chrono::system_clock::now() + 5s);
          (void)stub->Publish(ctx.get(), req, &resp);
        }
      });
    }
    // As a user would make them: labels changing on a namespace.
    threads_.emplace_back([this] {
      for (int i = 0; !stop_; ++i) d_.ctr({"namespaces", "label", "flood", "n=" + std::to_string(i)});
    });
  }
  ~EventFlood() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  EventFlood(const EventFlood&) = delete;
  EventFlood& operator=(const EventFlood&) = delete;

 private:
  Daemon& d_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// The reported hang: `ctr events` subscribers each stopped by SIGINT while
// events flow (so a write is often in flight when the call is cancelled), then
// SIGTERM. It showed in about half of such rounds before the fix.
TEST(Shutdown, SigtermAfterManySubscribersCameAndWentWhileEventsFlowed) {
  constexpr int kRounds = 4;
  constexpr int kSubscribers = 100;
  constexpr int kAtOnce = 10;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Daemon d;
    ASSERT_EQ(d.ctr({"namespaces", "create", "flood"}).exit_code, 0);
    {
      EventFlood flood(d);
      for (int started = 0; started < kSubscribers; started += kAtOnce) {
        std::deque<std::unique_ptr<Process>> subscribers;
        std::vector<std::string> logs;
        for (int i = 0; i < kAtOnce; ++i) {
          logs.push_back((d.dir() / ("events-" + std::to_string(started + i) + ".log")).string());
          subscribers.push_back(std::make_unique<Process>(
              std::vector<std::string>{ctr_binary(), "-a", d.address(), "events"}, logs.back()));
        }
        for (int i = 0; i < kAtOnce; ++i) {
          // Receiving: the stream is busy writing when SIGINT cancels it.
          EXPECT_THAT(wait_for_content(logs[i], {"/flood/tick"}, 10s), HasSubstr("/flood/tick"));
          subscribers[i]->signal(SIGINT);
        }
        for (auto& s : subscribers) EXPECT_TRUE(s->wait(10s).has_value());
      }
    }
    expect_drained_stop(d);
  }
}

// A Subscribe whose client never reads: gRPC's flow control stalls its writes.
TEST(Shutdown, SigtermWithASubscriberThatStoppedReading) {
  Daemon d;
  auto stub = events_api::Events::NewStub(d.channel());
  grpc::ClientContext ctx;
  auto reader = stub->Subscribe(&ctx, events_api::SubscribeRequest());
  {
    EventFlood flood(d);
    // Enough events to fill the transport's windows many times over.
    auto ns_stub = events_api::Events::NewStub(d.channel());
    events_api::PublishRequest req;
    req.set_topic("/flood/big");
    req.mutable_event()->set_type_url("containerd.events.NamespaceUpdate");
    req.mutable_event()->set_value(std::string(64 << 10, 'x'));
    for (int i = 0; i < 200; ++i) {
      google::protobuf::Empty resp;
      auto pctx = context_for("flood");
      ASSERT_TRUE(ns_stub->Publish(pctx.get(), req, &resp).ok());
    }
  }
  expect_drained_stop(d);
  ctx.TryCancel();
}

// A content blob of `size` bytes written through the API; returns its digest.
std::string write_blob(Daemon& d, const std::string& ref, const std::string& data, bool commit) {
  auto stub = content_api::Content::NewStub(d.channel());
  auto ctx = context_for("s");
  auto stream = stub->Write(ctx.get());
  content_api::WriteContentRequest req;
  req.set_action(content_api::WRITE);
  req.set_ref(ref);
  req.set_total(static_cast<int64_t>(data.size()));
  const std::string digest = sha256_digest(data);
  constexpr size_t kChunk = 1 << 20;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    req.set_offset(static_cast<int64_t>(off));
    req.set_data(data.substr(off, kChunk));
    const bool last = off + kChunk >= data.size();
    if (last && commit) {
      req.set_action(content_api::COMMIT);
      req.set_expected(digest);
    }
    content_api::WriteContentResponse resp;
    EXPECT_TRUE(stream->Write(req));
    EXPECT_TRUE(stream->Read(&resp));
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  return digest;
}

// Every kind of streaming call, each cancelled by its client mid-flight, then
// one of each left open and a client that vanished: SIGTERM drains them all.
TEST(Shutdown, SigtermAfterEveryStreamingCallWasCancelledMidFlight) {
  Daemon d(without_gc());
  const std::string big(8 << 20, 'b');
  const std::string digest = write_blob(d, "big", big, /*commit=*/true);
  auto content = content_api::Content::NewStub(d.channel());
  auto events = events_api::Events::NewStub(d.channel());
  auto containers = containers_api::Containers::NewStub(d.channel());
  for (int i = 0; i < 50; ++i) {
    containers_api::CreateContainerRequest req;
    req.mutable_container()->set_id("c" + std::to_string(i));
    req.mutable_container()->mutable_runtime()->set_name("io.containerd.runc.v2");
    req.mutable_container()->mutable_spec()->set_type_url(
        "types.containerd.io/opencontainers/runtime-spec/1/Spec");
    req.mutable_container()->mutable_spec()->set_value("{}");
    containers_api::CreateContainerResponse resp;
    auto ctx = context_for("s");
    ASSERT_TRUE(containers->Create(ctx.get(), req, &resp).ok());
  }

  for (int pass = 0; pass < 2; ++pass) {
    const bool cancel = pass == 0;  // the second pass leaves each call open
    // Read: one chunk, then the client goes.
    auto read_ctx = context_for("s");
    content_api::ReadContentRequest read_req;
    read_req.set_digest(digest);
    auto reader = content->Read(read_ctx.get(), read_req);
    content_api::ReadContentResponse chunk;
    ASSERT_TRUE(reader->Read(&chunk));
    // Write: part of a blob, neither committed nor closed.
    auto write_ctx = context_for("s");
    auto writer = content->Write(write_ctx.get());
    content_api::WriteContentRequest wreq;
    wreq.set_action(content_api::WRITE);
    wreq.set_ref("half-" + std::to_string(pass));
    wreq.set_total(static_cast<int64_t>(big.size()));
    wreq.set_data(big.substr(0, 1 << 20));
    content_api::WriteContentResponse wresp;
    ASSERT_TRUE(writer->Write(wreq));
    ASSERT_TRUE(writer->Read(&wresp));
    // ListStream: one container of fifty.
    auto list_ctx = context_for("s");
    auto lister = containers->ListStream(list_ctx.get(), containers_api::ListContainersRequest());
    containers_api::ListContainerMessage msg;
    ASSERT_TRUE(lister->Read(&msg));
    // Subscribe: one event.
    auto sub_ctx = context_for("s");
    auto sub = events->Subscribe(sub_ctx.get(), events_api::SubscribeRequest());
    ASSERT_EQ(d.ctr({"namespaces", "label", "s", "pass=" + std::to_string(pass)}).exit_code, 0);
    events_api::Envelope env;
    ASSERT_TRUE(sub->Read(&env));
    if (cancel) {
      for (auto* c : {read_ctx.get(), write_ctx.get(), list_ctx.get(), sub_ctx.get()}) c->TryCancel();
      (void)reader->Finish();
      (void)writer->Finish();
      (void)lister->Finish();
      (void)sub->Finish();
      continue;
    }
    // A client that half-closes its Write, and one that vanishes outright.
    writer->WritesDone();
    Process gone({ctr_binary(), "-a", d.address(), "events"}, (d.dir() / "gone.log").string());
    // It is subscribed once it has seen an event; until then, more events.
    bool seen = false;
    for (int i = 0; i < 20 && !seen; ++i) {
      ASSERT_EQ(d.ctr({"namespaces", "label", "s", "gone=" + std::to_string(i)}).exit_code, 0);
      seen =
          wait_for_content(d.dir() / "gone.log", {"/namespaces/update"}, 500ms).find("/namespaces/update") !=
          std::string::npos;
    }
    ASSERT_TRUE(seen) << "ctr events never received an event";
    gone.signal(SIGKILL);
    ASSERT_TRUE(gone.wait(10s).has_value());
    expect_drained_stop(d);
    for (auto* c : {read_ctx.get(), write_ctx.get(), list_ctx.get(), sub_ctx.get()}) c->TryCancel();
  }
  // Nothing half-written was committed: the half blobs are no content.
  d.start();
  ASSERT_TRUE(d.wait_ready());
  auto ls = d.ctr({"content", "ls"}, "s");
  EXPECT_THAT(ls.out, HasSubstr(digest));
  EXPECT_EQ(lines_of(ls.out).size(), 2u) << ls.out;  // the header and the one committed blob
}

// SIGTERM while `ctr images import` is unpacking: the layer being applied
// finishes or is dropped, the daemon drains and stops, and after a restart
// the same import succeeds and the image is complete.
TEST(Shutdown, SigtermDuringAnImportsUnpack) {
  Daemon d({.extra_args = {"--log-level", "debug"}});
  // Uncompressible files, so applying the layers takes a while.
  const auto layer = d.dir() / "big";
  std::filesystem::create_directories(layer);
  std::mt19937_64 random(42);
  for (int f = 0; f < 24; ++f) {
    std::string data(2 << 20, '\0');
    for (size_t i = 0; i + 8 <= data.size(); i += 8) {
      const uint64_t v = random();
      std::memcpy(&data[i], &v, 8);
    }
    std::ofstream(layer / ("f" + std::to_string(f)), std::ios::binary) << data;
  }
  const auto image = mkimage(
      d.dir(), "big.tar", {"--busybox", "--compression", "none", "docker.io/library/big:1", layer.string()});
  Process import({ctr_binary(), "-a", d.address(), "images", "import", image.string()},
                 (d.dir() / "import.log").string());
  const auto log = d.dir() / "ctrd-1.log";
  ASSERT_THAT(wait_for_content(log, {"applying layer"}, 60s), HasSubstr("applying layer")) << d.log();
  expect_drained_stop(d);
  EXPECT_TRUE(import.wait(30s).has_value());

  d.start();
  ASSERT_TRUE(d.wait_ready());
  auto again = d.ctr({"images", "import", image.string()});
  ASSERT_EQ(again.exit_code, 0) << again.all();
  auto check = d.ctr({"images", "check"});
  EXPECT_THAT(check.out, HasSubstr("complete")) << check.all();
  EXPECT_THAT(check.out, Not(HasSubstr("incomplete"))) << check.all();
}

}  // namespace
}  // namespace ctrd::testing
