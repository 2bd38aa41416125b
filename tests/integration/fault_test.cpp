// Crash safety and load: kill -9 in the middle of a large ingest loses nothing
// committed and the ingest resumes; many clients and subscribers at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "harness.h"

namespace ctrd::testing {
namespace {

// A bound on the daemon's resident memory under load: it catches a leak or
// a buffer per call, far above what the daemon needs (tens of MiB). An
// AddressSanitizer build keeps freed memory in quarantine (256 MiB by
// default) and shadow memory besides, so its daemon gets that much more.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kRssBoundKib = (512 + 384) * 1024;
#else
constexpr int64_t kRssBoundKib = 512 * 1024;
#endif

namespace content_api = containerd::services::content::v1;
namespace events_api = containerd::services::events::v1;
namespace ns_api = containerd::services::namespaces::v1;

// Deterministic bytes for offset-addressed chunks: resumable writes can regenerate them.
void fill(std::string& buf, int64_t offset, size_t n) {
  buf.resize(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = static_cast<uint64_t>(offset + static_cast<int64_t>(i)) * 0x9E3779B97F4A7C15ULL;
    std::memcpy(buf.data() + i, &v, std::min<size_t>(8, n - i));
  }
}

std::string digest_of_generated(int64_t total, size_t chunk) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::string buf;
  for (int64_t off = 0; off < total; off += static_cast<int64_t>(chunk)) {
    fill(buf, off, static_cast<size_t>(std::min<int64_t>(chunk, total - off)));
    EVP_DigestUpdate(ctx, buf.data(), buf.size());
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return "sha256:" + hex(md, len);
}

std::string digest_of_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return "sha256:" + hex(md, len);
}

using WriteStream =
    grpc::ClientReaderWriter<content_api::WriteContentRequest, content_api::WriteContentResponse>;

// Sends one request and reads its response.
bool step(WriteStream& s, const content_api::WriteContentRequest& req,
          content_api::WriteContentResponse* resp) {
  return s.Write(req) && s.Read(resp);
}

// Writes the blob through Write from `from` (the server's offset) up to
// `stop_at` (or the end), then commits if it reached the end.
grpc::Status write_range(Daemon& d, const std::string& ref, int64_t total, const std::string& expected,
                         int64_t stop_at, const std::function<void(int64_t)>& on_progress = {}) {
  auto stub = content_api::Content::NewStub(d.channel());
  auto ctx = context_for("crash");
  auto stream = stub->Write(ctx.get());
  content_api::WriteContentRequest req;
  content_api::WriteContentResponse resp;
  req.set_action(content_api::STAT);
  req.set_ref(ref);
  req.set_total(total);
  if (!step(*stream, req, &resp)) return stream->Finish();
  int64_t offset = resp.offset();
  const size_t chunk = 1 << 20;
  std::string buf;
  while (offset < stop_at) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(chunk, total - offset));
    req.Clear();
    req.set_action(content_api::WRITE);
    req.set_offset(offset);
    fill(buf, offset, n);
    req.set_data(buf);
    if (!step(*stream, req, &resp)) return stream->Finish();
    offset = resp.offset();
    if (on_progress) on_progress(offset);
  }
  if (offset == total) {
    req.Clear();
    req.set_action(content_api::COMMIT);
    req.set_offset(offset);
    req.set_total(total);
    req.set_expected(expected);
    if (!step(*stream, req, &resp)) return stream->Finish();
  }
  stream->WritesDone();
  return stream->Finish();
}

TEST(Fault, Kill9MidIngestKeepsBlobsAndIngestResumes) {
  const int64_t total = int64_t{1} << 30;  // 1 GiB, as a large layer would be
  const std::string expected = digest_of_generated(total, 1 << 20);
  Daemon d(without_gc());

  // A committed blob that must survive the crash intact.
  const int64_t small = 5 << 20;
  const std::string small_digest = digest_of_generated(small, 1 << 20);
  ASSERT_TRUE(write_range(d, "small", small, small_digest, small).ok());

  // Kill -9 once a quarter of the big ingest is in.
  std::atomic<bool> killed{false};
  write_range(d, "big", total, expected, total, [&](int64_t offset) {
    if (!killed && offset >= total / 4) {
      killed = true;
      d.kill9();
    }
  });
  ASSERT_TRUE(killed);

  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();

  // Every listed blob still hashes to its digest.
  auto stub = content_api::Content::NewStub(d.channel());
  {
    auto ctx = context_for("crash");
    content_api::ListContentRequest req;
    auto reader = stub->List(ctx.get(), req);
    content_api::ListContentResponse resp;
    int listed = 0;
    while (reader->Read(&resp)) {
      for (const auto& info : resp.info()) {
        ++listed;
        auto path = std::filesystem::path(d.root()) / "io.containerd.content.v1.content" / "blobs" /
                    "sha256" / info.digest().substr(7);
        EXPECT_EQ(digest_of_file(path), info.digest());
      }
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(listed, 1);
  }

  // The ingest is listed, with an offset, and resumes from there.
  int64_t resumed_from = 0;
  {
    auto ctx = context_for("crash");
    content_api::StatusRequest req;
    req.set_ref("big");
    content_api::StatusResponse resp;
    auto s = stub->Status(ctx.get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    resumed_from = resp.status().offset();
    EXPECT_GT(resumed_from, 0);
    EXPECT_LE(resumed_from, total);
  }
  int64_t first_offset = -1;
  auto s = write_range(d, "big", total, expected, total, [&](int64_t offset) {
    if (first_offset < 0) first_offset = offset;
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(first_offset, resumed_from) << "the first write continued at the stored offset";
  EXPECT_LE(first_offset, resumed_from + (1 << 20));
  auto ls = d.ctr({"content", "ls", "-q"}, "crash");
  EXPECT_THAT(ls.out, ::testing::HasSubstr(expected));
}

pid_t daemon_pid(Daemon& d) { return d.process().pid(); }

int64_t proc_status_value(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  }
  return -1;
}

TEST(Load, ThousandSubscribersWithoutAThreadEach) {
  Daemon d(without_gc());
  const int subscribers = 1000;
  auto stub = events_api::Events::NewStub(d.channel());
  grpc::CompletionQueue cq;
  struct Sub {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientAsyncReader<events_api::Envelope>> reader;
    events_api::Envelope env;
  };
  std::vector<std::unique_ptr<Sub>> subs;
  events_api::SubscribeRequest req;
  req.add_filters("topic==\"/namespaces/create\"");
  for (int i = 0; i < subscribers; ++i) {
    auto s = std::make_unique<Sub>();
    s->reader = stub->AsyncSubscribe(&s->ctx, req, &cq, s.get());
    subs.push_back(std::move(s));
  }
  // Wait until every stream has started (tag per sub, bounded).
  for (int started = 0; started < subscribers;) {
    void* tag;
    bool ok;
    ASSERT_EQ(cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::seconds(30)),
              grpc::CompletionQueue::GOT_EVENT);
    ASSERT_TRUE(ok);
    ++started;
  }
  for (auto& s : subs)
    s->reader->Read(&s->env, reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(s.get()) | 1));
  const int64_t threads = proc_status_value(daemon_pid(d), "Threads");
  EXPECT_LT(threads, 100) << "subscribers must not pin a thread each";

  // An event reaches every subscriber. The server may still be registering
  // the last subscriptions when the streams start, so publish until all have one.
  int received = 0;
  int round = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received < subscribers && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(d.ctr({"ns", "create", "fanout" + std::to_string(round++)}).exit_code, 0);
    void* tag;
    bool ok;
    while (received < subscribers &&
           cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::seconds(2)) ==
               grpc::CompletionQueue::GOT_EVENT) {
      auto* s = reinterpret_cast<Sub*>(reinterpret_cast<uintptr_t>(tag) & ~uintptr_t{1});
      ASSERT_TRUE(ok);
      EXPECT_EQ(s->env.topic(), "/namespaces/create");
      if (s->env.namespace_().empty()) continue;
      ++received;
      s->env.Clear();  // count each subscriber once; its next read is not needed
    }
  }
  EXPECT_EQ(received, subscribers);
  const int64_t rss_kib = proc_status_value(daemon_pid(d), "VmRSS");
  RecordProperty("daemon_rss_kib", std::to_string(rss_kib));
  EXPECT_LT(rss_kib, kRssBoundKib) << "RSS with 1000 subscribers";
  for (auto& s : subs) s->ctx.TryCancel();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(Load, SixtyFourClientsWritingAndListing) {
  Daemon d(without_gc());
  const int clients = 64;
  const int blobs_each = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = content_api::Content::NewStub(d.channel());
      for (int b = 0; b < blobs_each; ++b) {
        std::string data(64 << 10, static_cast<char>('a' + (c % 26)));
        data += std::to_string(c) + "/" + std::to_string(b);
        auto ctx = context_for("load");
        auto stream = stub->Write(ctx.get());
        content_api::WriteContentRequest req;
        content_api::WriteContentResponse resp;
        req.set_action(content_api::COMMIT);
        req.set_ref("c" + std::to_string(c) + "-" + std::to_string(b));
        req.set_total(static_cast<int64_t>(data.size()));
        req.set_expected(sha256_digest(data));
        req.set_data(data);
        if (!step(*stream, req, &resp)) failures++;
        stream->WritesDone();
        if (!stream->Finish().ok()) failures++;

        auto lctx = context_for("load");
        content_api::ListContentRequest lreq;
        auto reader = stub->List(lctx.get(), lreq);
        content_api::ListContentResponse lresp;
        while (reader->Read(&lresp)) {
        }
        if (!reader->Finish().ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto ls = d.ctr({"content", "ls", "-q"}, "load");
  EXPECT_EQ(std::count(ls.out.begin(), ls.out.end(), '\n'), clients * blobs_each);
  const int64_t rss_kib = proc_status_value(daemon_pid(d), "VmRSS");
  RecordProperty("daemon_rss_kib", std::to_string(rss_kib));
  EXPECT_LT(rss_kib, kRssBoundKib);
}

}  // namespace
}  // namespace ctrd::testing
