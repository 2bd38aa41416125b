#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "content/local/files.h"
#include "digest/sha256.h"

namespace ctrd::content::local {
namespace {

using digest::Sha256;

using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(DigestSha256, MatchesKnownVectors) {
  EXPECT_EQ(Sha256::hex_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestSha256, DigestCanBeTakenMidStreamAndResetStartsOver) {
  Sha256 hasher;
  hasher.update("a");
  EXPECT_EQ(hasher.hex(), Sha256::hex_of("a"));
  hasher.update("bc");
  EXPECT_EQ(hasher.digest(), "sha256:" + Sha256::hex_of("abc"));
  hasher.reset();
  EXPECT_EQ(hasher.hex(), Sha256::hex_of(""));
}

TEST(ContentLocalTimestamp, FormatsLikeGoRfc3339Nano) {
  Clock::time_point t{
      std::chrono::duration_cast<Clock::duration>(seconds(1700000000) + nanoseconds(120000000))};
  EXPECT_EQ(format_timestamp(t), "2023-11-14T22:13:20.12Z");
  EXPECT_EQ(format_timestamp(Clock::time_point{seconds(1700000000)}), "2023-11-14T22:13:20Z");
}

TEST(ContentLocalTimestamp, RoundTripsWithNanoseconds) {
  Clock::time_point now = Clock::now();
  auto parsed = parse_timestamp(format_timestamp(now));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, now);
}

TEST(ContentLocalTimestamp, ParsesContainerdLocalOffsets) {
  auto parsed = parse_timestamp("2023-11-15T00:13:20.5+02:00");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, Clock::time_point{std::chrono::duration_cast<Clock::duration>(seconds(1700000000) +
                                                                                   nanoseconds(500000000))});
  auto negative = parse_timestamp("2023-11-14T21:13:20-01:00");
  ASSERT_TRUE(negative.has_value());
  EXPECT_EQ(*negative, Clock::time_point{seconds(1700000000)});
}

TEST(ContentLocalTimestamp, RejectsGarbage) {
  for (const char* bad : {"", "yesterday", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk"}) {
    EXPECT_FALSE(parse_timestamp(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace ctrd::content::local
