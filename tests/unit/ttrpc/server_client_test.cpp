#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "temp_dir.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::ttrpc {
namespace {

using errdefs::Code;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kService = "ctrd.test.v1.Test";

std::pair<os::UniqueFd, os::UniqueFd> socket_pair() {
  int fds[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return {};
  // Guards the raw-socket tests against hanging forever on a bug.
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return {os::UniqueFd(fds[0]), os::UniqueFd(fds[1])};
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One frame from a raw socket; nullopt on EOF, error or timeout.
std::optional<std::pair<FrameHeader, std::string>> read_frame(int fd) {
  auto read_exact = [fd](char* p, size_t n) {
    while (n > 0) {
      const ssize_t r = ::recv(fd, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  };
  char header[kFrameHeaderSize];
  if (!read_exact(header, sizeof(header))) return std::nullopt;
  const FrameHeader h = decode_frame_header(header);
  std::string payload(h.length, '\0');
  if (!read_exact(payload.data(), payload.size())) return std::nullopt;
  return std::make_pair(h, payload);
}

std::string request_frame(uint32_t id, const Request& request) {
  std::string out;
  append_frame(out, id, MessageType::kRequest, encode(request));
  return out;
}

// Handlers block here until released, their deadline passes or they are
// told to stop; the test learns why each one returned.
class Blocker {
 public:
  enum class Why { kReleased, kDeadline, kStopped };

  Why block(const CallContext& ctx) {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    const auto released = [&] { return released_; };
    bool ok = ctx.deadline ? cv_.wait_until(lock, ctx.stop, *ctx.deadline, released)
                           : cv_.wait(lock, ctx.stop, released);
    Why why = ok ? Why::kReleased : ctx.stop.stop_requested() ? Why::kStopped : Why::kDeadline;
    outcomes_.push_back(why);
    cv_.notify_all();
    return why;
  }
  bool wait_entered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return entered_ >= n; });
  }
  std::optional<Why> wait_outcome() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, seconds(10), [&] { return !outcomes_.empty(); })) return std::nullopt;
    return outcomes_.front();
  }
  int outcome_count() {
    std::lock_guard lock(mu_);
    return static_cast<int>(outcomes_.size());
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  int entered_ = 0;
  bool released_ = false;
  std::vector<Why> outcomes_;
};

class TtrpcTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = make_server(ServerOptions{.max_workers = 80}); }

  std::unique_ptr<Server> make_server(ServerOptions options) {
    auto server = std::make_unique<Server>(options);
    EXPECT_TRUE(
        server
            ->add_handler(kService, "Echo",
                          [](const CallContext&, std::string_view req) -> errdefs::StatusOr<std::string> {
                            return std::string(req);
                          })
            .ok());
    EXPECT_TRUE(
        server
            ->add_handler(kService, "Fail",
                          [](const CallContext&, std::string_view req) -> errdefs::StatusOr<std::string> {
                            return errdefs::NotFound("no such thing: " + std::string(req));
                          })
            .ok());
    EXPECT_TRUE(
        server
            ->add_handler(kService, "Namespace",
                          [](const CallContext& ctx, std::string_view) -> errdefs::StatusOr<std::string> {
                            auto ns = metadata_value(ctx.metadata, kNamespaceKey);
                            if (!ns) return errdefs::FailedPrecondition("no namespace");
                            return std::string(*ns) + "|" + ctx.service + "|" + ctx.method;
                          })
            .ok());
    EXPECT_TRUE(
        server
            ->add_handler(kService, "Block",
                          [this](const CallContext& ctx, std::string_view) -> errdefs::StatusOr<std::string> {
                            switch (blocker_.block(ctx)) {
                              case Blocker::Why::kReleased:
                                return std::string("released");
                              case Blocker::Why::kDeadline:
                                return errdefs::DeadlineExceeded("handler deadline");
                              case Blocker::Why::kStopped:
                                return errdefs::Canceled("stopped");
                            }
                            return errdefs::Internal("unreachable");
                          })
            .ok());
    EXPECT_TRUE(server
                    ->add_handler(kService, "Big",
                                  [](const CallContext&, std::string_view) -> errdefs::StatusOr<std::string> {
                                    return std::string(kMaxMessageSize + 1, 'b');
                                  })
                    .ok());
    EXPECT_TRUE(server
                    ->add_handler(kService, "Throw",
                                  [](const CallContext&, std::string_view) -> errdefs::StatusOr<std::string> {
                                    throw std::runtime_error("boom");
                                  })
                    .ok());
    return server;
  }

  std::unique_ptr<Client> connect_pair(ClientOptions options = {}) {
    auto [a, b] = socket_pair();
    EXPECT_TRUE(server_->serve_connection(std::move(a)).ok());
    auto client = Client::from_fd(std::move(b), "socketpair", std::move(options));
    EXPECT_TRUE(client.ok());
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // A raw peer for sending what a well-behaved client never would.
  os::UniqueFd raw_pair() {
    auto [a, b] = socket_pair();
    EXPECT_TRUE(server_->serve_connection(std::move(a)).ok());
    return std::move(b);
  }

  Blocker blocker_;
  std::unique_ptr<Server> server_;
};

TEST_F(TtrpcTest, EchoOverASocketPair) {
  auto client = connect_pair();
  ASSERT_NE(client, nullptr);
  auto reply = client->call(kService, "Echo", "hello");
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "hello");
  auto empty = client->call(kService, "Echo", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  const std::string binary("\0\x01\x02\xff", 4);
  EXPECT_EQ(client->call(kService, "Echo", binary).value(), binary);
}

TEST_F(TtrpcTest, EchoOverAUnixSocketWithTheUnixScheme) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string address = "unix://" + dir.str() + "/ttrpc.sock";
  auto listener = listen_unix(address);
  ASSERT_TRUE(listener.ok()) << listener.status().to_string();
  ASSERT_TRUE(server_->serve(std::move(listener).value()).ok());

  auto client = Client::connect(address);
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  EXPECT_EQ((*client)->call(kService, "Echo", "over a path").value(), "over a path");
  EXPECT_EQ((*client)->address(), address);

  // A second listener on a stale socket file replaces it.
  auto again = listen_unix(dir.str() + "/ttrpc.sock");
  EXPECT_TRUE(again.ok()) << again.status().to_string();
}

TEST_F(TtrpcTest, ConnectFailuresAreUnavailableOrInvalid) {
  TempDir dir;
  auto missing = Client::connect(dir.str() + "/nothing.sock");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kUnavailable);
  EXPECT_NE(missing.status().message().find("nothing.sock"), std::string::npos);
  EXPECT_EQ(Client::connect("unix://").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Client::connect(std::string(200, 'x')).status().code(), Code::kInvalidArgument);
}

TEST_F(TtrpcTest, ErrorsKeepTheirCodeAndMessage) {
  auto client = connect_pair();
  auto fail = client->call(kService, "Fail", "x");
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.status().code(), Code::kNotFound);
  EXPECT_EQ(fail.status().message(), "no such thing: x");

  auto no_service = client->call("ctrd.test.v1.Nope", "Echo", "");
  EXPECT_EQ(no_service.status().code(), Code::kNotImplemented);
  EXPECT_EQ(no_service.status().message(), "service ctrd.test.v1.Nope");
  auto no_method = client->call(kService, "Nope", "");
  EXPECT_EQ(no_method.status().code(), Code::kNotImplemented);
  EXPECT_EQ(no_method.status().message(), "method Nope");

  auto threw = client->call(kService, "Throw", "");
  EXPECT_EQ(threw.status().code(), Code::kInternal);
  EXPECT_NE(threw.status().message().find("boom"), std::string::npos);
  // The connection is still good after all of that.
  EXPECT_EQ(client->call(kService, "Echo", "ok").value(), "ok");
}

TEST_F(TtrpcTest, MetadataReachesTheHandler) {
  auto client = connect_pair();
  auto reply =
      client->call(kService, "Namespace", "", {{"other", "x"}, {"Containerd-Namespace-Ttrpc", "k8s.io"}});
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "k8s.io|ctrd.test.v1.Test|Namespace");
  EXPECT_EQ(client->call(kService, "Namespace", "").status().code(), Code::kFailedPrecondition);
}

TEST_F(TtrpcTest, TypedCallsUseProtobufMessages) {
  auto client = connect_pair();
  google::protobuf::StringValue request;
  request.set_value("typed");
  auto reply = client->call<google::protobuf::StringValue>(kService, "Echo", request);
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(reply->value(), "typed");

  auto bad = client->call<google::protobuf::StringValue>(kService, "Big", request);
  EXPECT_EQ(bad.status().code(), Code::kResourceExhausted);
}

TEST_F(TtrpcTest, TheServerHandlerSeesTheCallersTimeoutAsItsDeadline) {
  auto client = connect_pair();
  const auto before = Clock::now();
  // Generous client timeout: the handler's own deadline (from timeout_nano)
  // must be what ends the call, so its DeadlineExceeded comes back.
  auto reply = client->call(kService, "Block", "", {}, milliseconds(300));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kDeadlineExceeded);
  auto why = blocker_.wait_outcome();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, Blocker::Why::kDeadline);
  EXPECT_GE(Clock::now() - before, milliseconds(300));
  EXPECT_EQ(client->call(kService, "Echo", "still here").value(), "still here");
}

TEST_F(TtrpcTest, AnExpiredTimeoutFailsWithoutSending) {
  auto client = connect_pair();
  EXPECT_EQ(client->call(kService, "Block", "", {}, milliseconds(0)).status().code(),
            Code::kDeadlineExceeded);
  EXPECT_EQ(client->call(kService, "Block", "", {}, milliseconds(-5)).status().code(),
            Code::kDeadlineExceeded);
  // Had either reached the server, this would be the handler's second entry.
  auto raw = raw_pair();
  ASSERT_TRUE(
      write_all(raw.get(), request_frame(1, Request{.service = std::string(kService), .method = "Block"})));
  ASSERT_TRUE(blocker_.wait_entered(1));
  blocker_.release();
  auto frame = read_frame(raw.get());
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(blocker_.outcome_count(), 1);
}

TEST_F(TtrpcTest, ABlockedHandlerDoesNotHoldUpOtherCalls) {
  auto client = connect_pair();
  const Metadata none;
  // The server gets no deadline here: the raw request has no timeout_nano.
  auto raw = raw_pair();
  ASSERT_TRUE(
      write_all(raw.get(), request_frame(1, Request{.service = std::string(kService), .method = "Block"})));
  ASSERT_TRUE(blocker_.wait_entered(1));

  auto reply = client->call(kService, "Echo", "fast", none, milliseconds(2000));
  EXPECT_EQ(reply.value(), "fast");
  blocker_.release();
  auto frame = read_frame(raw.get());
  ASSERT_TRUE(frame.has_value());
  Response response;
  ASSERT_TRUE(decode(frame->second, response).ok());
  EXPECT_EQ(response.payload, "released");
}

TEST_F(TtrpcTest, SixtyFourConcurrentCallsShareOneConnection) {
  auto client = connect_pair();
  constexpr int kCalls = 64;
  std::vector<std::thread> threads;
  std::vector<errdefs::Status> results(kCalls);
  std::vector<std::string> replies(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      auto r = client->call(kService, "Block", "");
      results[i] = r.status();
      if (r.ok()) replies[i] = *r;
    });
  }
  // All 64 handlers are running at once, so the calls truly overlap.
  const bool all_in = blocker_.wait_entered(kCalls);
  blocker_.release();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all_in);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].to_string();
    EXPECT_EQ(replies[i], "released");
  }

  // And many distinct payloads each come back to their own caller.
  threads.clear();
  std::atomic<int> mismatches = 0;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 20; ++j) {
        const std::string payload = std::to_string(i) + ":" + std::to_string(j) + std::string(i * 100, 'p');
        auto r = client->call(kService, "Echo", payload);
        if (!r.ok() || *r != payload) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(TtrpcTest, AnOversizedRequestGetsResourceExhaustedAndTheConnectionLives) {
  auto raw = raw_pair();
  char header[kFrameHeaderSize];
  const uint32_t big = kMaxMessageSize + 100;
  encode_frame_header(FrameHeader{.length = big, .stream_id = 1, .type = MessageType::kRequest}, header);
  std::string payload(big, 'q');
  ASSERT_TRUE(write_all(raw.get(), std::string_view(header, sizeof(header))));
  ASSERT_TRUE(write_all(raw.get(), payload));
  ASSERT_TRUE(write_all(
      raw.get(),
      request_frame(3, Request{.service = std::string(kService), .method = "Echo", .payload = "after"})));

  auto first = read_frame(raw.get());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->first.stream_id, 1u);
  EXPECT_EQ(first->first.type, MessageType::kResponse);
  Response response;
  ASSERT_TRUE(decode(first->second, response).ok());
  EXPECT_EQ(from_grpc_code(response.code), Code::kResourceExhausted);
  EXPECT_NE(response.message.find("exceed maximum message size"), std::string::npos);

  auto second = read_frame(raw.get());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->first.stream_id, 3u);
  ASSERT_TRUE(decode(second->second, response).ok());
  EXPECT_EQ(response.code, 0);
  EXPECT_EQ(response.payload, "after");
}

TEST_F(TtrpcTest, OversizedMessagesFailOnlyTheirCallOnTheClient) {
  auto client = connect_pair();
  auto too_big = client->call(kService, "Echo", std::string(kMaxMessageSize, 'x'));
  EXPECT_EQ(too_big.status().code(), Code::kResourceExhausted);
  auto big_reply = client->call(kService, "Big", "");
  EXPECT_EQ(big_reply.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(client->call(kService, "Echo", "fine").value(), "fine");
}

TEST_F(TtrpcTest, TheClientDiscardsAnOversizedResponseFrame) {
  // A fake server that answers the first call with a frame over the limit.
  auto [server_end, client_end] = socket_pair();
  auto client = Client::from_fd(std::move(client_end), "fake");
  ASSERT_TRUE(client.ok());
  auto first = std::async(std::launch::async, [&] { return (*client)->call("s", "m", "1"); });

  auto req = read_frame(server_end.get());
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->first.stream_id, 1u);
  char header[kFrameHeaderSize];
  const uint32_t big = kMaxMessageSize + 1;
  encode_frame_header(FrameHeader{.length = big, .stream_id = 1, .type = MessageType::kResponse}, header);
  std::thread writer([&, fd = server_end.get()] {
    write_all(fd, std::string_view(header, sizeof(header)));
    write_all(fd, std::string(big, 'r'));
  });
  auto result = first.get();
  EXPECT_EQ(result.status().code(), Code::kResourceExhausted);
  writer.join();

  auto second = std::async(std::launch::async, [&] { return (*client)->call("s", "m", "2"); });
  req = read_frame(server_end.get());
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->first.stream_id, 3u);  // odd ids, counting up by two
  std::string reply;
  append_frame(reply, 3, MessageType::kResponse, encode(Response{.payload = "two"}));
  ASSERT_TRUE(write_all(server_end.get(), reply));
  EXPECT_EQ(second.get().value(), "two");
}

TEST_F(TtrpcTest, BadRequestsAreAnsweredWithoutClosing) {
  auto raw = raw_pair();
  std::string frames;
  append_frame(frames, 1, MessageType::kRequest, "\xff\xff");  // not a Request
  frames += request_frame(2, Request{.service = std::string(kService), .method = "Echo"});
  ASSERT_TRUE(write_all(raw.get(), frames));
  for (uint32_t id : {1u, 2u}) {
    auto frame = read_frame(raw.get());
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->first.stream_id, id);
    Response response;
    ASSERT_TRUE(decode(frame->second, response).ok());
    EXPECT_EQ(from_grpc_code(response.code), Code::kInvalidArgument) << response.message;
  }
}

TEST_F(TtrpcTest, GarbageClosesOnlyThatConnection) {
  auto client = connect_pair();
  auto raw = raw_pair();
  ASSERT_TRUE(write_all(raw.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  char byte = 0;
  EXPECT_EQ(::recv(raw.get(), &byte, 1, 0), 0);  // EOF, not a timeout
  EXPECT_EQ(client->call(kService, "Echo", "unaffected").value(), "unaffected");
  EXPECT_EQ(server_->connection_count(), 1u);
}

TEST_F(TtrpcTest, ShutdownFailsPendingAndLaterCallsWithUnavailable) {
  std::promise<void> closed;
  auto client = connect_pair(ClientOptions{.on_close = [&] { closed.set_value(); }});
  auto pending = std::async(std::launch::async, [&] { return client->call(kService, "Block", ""); });
  ASSERT_TRUE(blocker_.wait_entered(1));

  server_->shutdown();
  auto result = pending.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kUnavailable);
  EXPECT_NE(result.status().message().find("socketpair"), std::string::npos);
  // Shutdown stopped the handler rather than waiting for a release.
  EXPECT_EQ(blocker_.wait_outcome(), Blocker::Why::kStopped);

  EXPECT_EQ(closed.get_future().wait_for(seconds(10)), std::future_status::ready);
  EXPECT_TRUE(client->closed());
  EXPECT_EQ(client->call(kService, "Echo", "").status().code(), Code::kUnavailable);
  EXPECT_EQ(server_->serve_connection(socket_pair().first).code(), Code::kFailedPrecondition);
}

TEST_F(TtrpcTest, ClosingTheClientFailsItsPendingCalls) {
  auto client = connect_pair();
  auto pending = std::async(std::launch::async, [&] { return client->call(kService, "Block", ""); });
  ASSERT_TRUE(blocker_.wait_entered(1));
  client->close();
  EXPECT_EQ(pending.get().status().code(), Code::kUnavailable);
  // The server side notices and stops the handler.
  EXPECT_EQ(blocker_.wait_outcome(), Blocker::Why::kStopped);
}

// The threads of this process, from /proc/self/task.
size_t thread_count() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

TEST_F(TtrpcTest, OneLoopReadsTheRepliesOfManyClients) {
  constexpr int kClients = 50;
  auto loop = std::make_unique<ClientLoop>();
  // The loop's thread and a server worker exist before the count is taken.
  ASSERT_EQ(connect_pair(ClientOptions{.loop = loop.get()})->call(kService, "Echo", "warm").value(), "warm");
  const size_t before = thread_count();

  std::atomic<int> closed = 0;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_pair(ClientOptions{.on_close = [&] { ++closed; }, .loop = loop.get()}));
    ASSERT_NE(clients.back(), nullptr);
  }
  // The warm-up client leaves the loop just after its close() returned.
  EXPECT_TRUE(
      ctrd::testing::poll_until([&] { return loop->connection_count() == static_cast<size_t>(kClients); },
                                milliseconds(5000), milliseconds(5)));
  // Before, each client started a reader thread of its own.
  EXPECT_EQ(thread_count(), before);

  std::vector<std::future<errdefs::StatusOr<std::string>>> replies;
  for (int i = 0; i < kClients; ++i) {
    replies.push_back(std::async(std::launch::async, [&, i] {
      return clients[static_cast<size_t>(i)]->call(kService, "Echo", "client " + std::to_string(i));
    }));
  }
  for (int i = 0; i < kClients; ++i) {
    auto reply = replies[static_cast<size_t>(i)].get();
    ASSERT_TRUE(reply.ok()) << reply.status().to_string();
    EXPECT_EQ(*reply, "client " + std::to_string(i));
  }

  // One client closed: its on_close has run when close() returns, and the
  // others go on.
  clients.front()->close();
  EXPECT_EQ(closed.load(), 1);
  EXPECT_TRUE(
      ctrd::testing::poll_until([&] { return loop->connection_count() == static_cast<size_t>(kClients - 1); },
                                milliseconds(5000), milliseconds(5)));
  EXPECT_EQ(clients.back()->call(kService, "Echo", "still").value(), "still");

  // A call that never gets a reply fails when its loop stops.
  auto pending = std::async(std::launch::async, [&] { return clients.back()->call(kService, "Block", ""); });
  ASSERT_TRUE(blocker_.wait_entered(1));
  clients.erase(clients.begin());
  std::promise<errdefs::Status> async_failed;
  clients[1]->call_async(kService, "Block", "", {}, [&](errdefs::StatusOr<std::string> reply) {
    async_failed.set_value(reply.status());
  });
  ASSERT_TRUE(blocker_.wait_entered(2));
  loop.reset();
  EXPECT_EQ(pending.get().status().code(), Code::kUnavailable);
  EXPECT_EQ(async_failed.get_future().get().code(), Code::kUnavailable);
  EXPECT_EQ(closed.load(), kClients);
  EXPECT_EQ(clients.front()->call(kService, "Echo", "").status().code(), Code::kUnavailable);
  blocker_.release();
}

TEST_F(TtrpcTest, AsyncCallsHoldNoThreadAndCompleteOnce) {
  auto client = connect_pair();
  std::promise<errdefs::StatusOr<std::string>> echoed;
  client->call_async(kService, "Echo", "async", {},
                     [&](errdefs::StatusOr<std::string> reply) { echoed.set_value(std::move(reply)); });
  auto reply = echoed.get_future().get();
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "async");

  std::promise<errdefs::Status> failed;
  client->call_async(kService, "Fail", "x", {},
                     [&](errdefs::StatusOr<std::string> r) { failed.set_value(r.status()); });
  EXPECT_EQ(failed.get_future().get().code(), Code::kNotFound);

  // A blocked async call is failed, once, when the connection goes.
  std::atomic<int> calls = 0;
  std::promise<errdefs::Status> blocked;
  client->call_async(kService, "Block", "", {}, [&](errdefs::StatusOr<std::string> r) {
    if (calls.fetch_add(1) == 0) blocked.set_value(r.status());
  });
  ASSERT_TRUE(blocker_.wait_entered(1));
  client->close();
  EXPECT_EQ(blocked.get_future().get().code(), Code::kUnavailable);
  EXPECT_EQ(calls.load(), 1);

  // After the close, the callback runs at once with Unavailable.
  errdefs::Status late;
  client->call_async(kService, "Echo", "", {}, [&](errdefs::StatusOr<std::string> r) { late = r.status(); });
  EXPECT_EQ(late.code(), Code::kUnavailable);
}

TEST_F(TtrpcTest, HandlersAreRegisteredOnceAndBeforeServing) {
  Server server;
  auto echo = [](const CallContext&, std::string_view r) -> errdefs::StatusOr<std::string> {
    return std::string(r);
  };
  EXPECT_TRUE(server.add_handler("s", "m", echo).ok());
  EXPECT_EQ(server.add_handler("s", "m", echo).code(), Code::kAlreadyExists);
  EXPECT_TRUE(server.add_handler("s", "other", echo).ok());
  ASSERT_TRUE(server.serve_connection(socket_pair().first).ok());
  EXPECT_EQ(server.add_handler("s", "late", echo).code(), Code::kFailedPrecondition);
}

TEST(Metadata, LooksUpTheFirstValueCaseInsensitively) {
  const Metadata md{{"A", "1"}, {"a", "2"}, {"b", "3"}};
  EXPECT_EQ(metadata_value(md, "a"), "1");
  EXPECT_EQ(metadata_value(md, "B"), "3");
  EXPECT_FALSE(metadata_value(md, "c").has_value());
}

}  // namespace
}  // namespace ctrd::ttrpc
