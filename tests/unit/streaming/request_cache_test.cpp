// streaming/request_cache: tokens good once, for a while, and only so many.
#include "streaming/request_cache.h"

#include <gtest/gtest.h>

#include <set>

namespace ctrd::streaming {
namespace {

using std::chrono::steady_clock;

TEST(RequestCache, ATokenIsGoodOnceForItsOwnRequest) {
  RequestCache cache;
  auto exec = cache.insert(ExecRequest{.container_id = "c1", .cmd = {"ls"}, .tty = true});
  auto forward = cache.insert(PortForwardRequest{.pod_sandbox_id = "p1", .ports = {80}});
  ASSERT_TRUE(exec.ok() && forward.ok());
  EXPECT_NE(*exec, *forward);
  EXPECT_EQ(exec->size(), 11u);  // 8 bytes, unpadded base64url
  EXPECT_EQ(exec->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  auto got = cache.consume(*exec);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::get<ExecRequest>(*got).container_id, "c1");
  EXPECT_TRUE(std::get<ExecRequest>(*got).tty);
  EXPECT_FALSE(cache.consume(*exec).has_value());
  EXPECT_FALSE(cache.consume("no-such-token").has_value());
  EXPECT_EQ(std::get<PortForwardRequest>(*cache.consume(*forward)).ports, std::vector<int32_t>{80});
}

TEST(RequestCache, ATokenExpiresAfterItsTimeToLive) {
  steady_clock::time_point now = steady_clock::now();
  RequestCache cache({.ttl = std::chrono::minutes(1), .max_outstanding = 10, .clock = [&] { return now; }});
  auto token = cache.insert(AttachRequest{.container_id = "c"});
  ASSERT_TRUE(token.ok());
  now += std::chrono::seconds(61);
  EXPECT_FALSE(cache.consume(*token).has_value());
}

TEST(RequestCache, OnlySoManyWaitUntilTheOldOnesExpire) {
  steady_clock::time_point now = steady_clock::now();
  RequestCache cache({.ttl = std::chrono::minutes(1), .max_outstanding = 3, .clock = [&] { return now; }});
  std::set<std::string> tokens;
  for (int i = 0; i < 3; ++i) {
    auto t = cache.insert(ExecRequest{.container_id = std::to_string(i)});
    ASSERT_TRUE(t.ok());
    tokens.insert(*t);
  }
  EXPECT_EQ(tokens.size(), 3u);
  auto full = cache.insert(ExecRequest{});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), errdefs::Code::kResourceExhausted);
  now += std::chrono::minutes(2);
  EXPECT_TRUE(cache.insert(ExecRequest{}).ok());
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace ctrd::streaming
