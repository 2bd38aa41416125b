#include <gtest/gtest.h>

#include "log/log.h"

namespace ctrd::log {
namespace {

TEST(Log, FormatIsLogfmtLikeContainerd) {
  EXPECT_EQ(format(Level::kInfo, "loading plugin \"x\"...", {{"type", "io.containerd.grpc.v1"}}),
            "level=info msg=\"loading plugin \\\"x\\\"...\" type=io.containerd.grpc.v1");
  EXPECT_EQ(format(Level::kWarn, "done", {}), "level=warning msg=\"done\"");
  EXPECT_EQ(format(Level::kError, "x", {{"error", "a b"}}), "level=error msg=\"x\" error=\"a b\"");
}

TEST(Log, QuoteEscapes) {
  EXPECT_EQ(quote("plain"), "plain");
  EXPECT_EQ(quote(""), "\"\"");
  EXPECT_EQ(quote("a=b"), "\"a=b\"");
  EXPECT_EQ(quote("line\nbreak"), "\"line\\nbreak\"");
}

TEST(Log, LevelsFilter) {
  ASSERT_TRUE(set_level("warn").ok());
  EXPECT_FALSE(enabled(Level::kInfo));
  EXPECT_TRUE(enabled(Level::kError));
  ASSERT_TRUE(set_level("debug").ok());
  EXPECT_TRUE(enabled(Level::kDebug));
  EXPECT_FALSE(set_level("loud").ok());
  ASSERT_TRUE(set_level("info").ok());
}

}  // namespace
}  // namespace ctrd::log
