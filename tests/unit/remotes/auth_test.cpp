#include "remotes/auth.h"

#include <gtest/gtest.h>

namespace ctrd::remotes {
namespace {

TEST(WwwAuthenticate, BearerChallengeOfDockerHub) {
  auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params.at("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].params.at("service"), "registry.docker.io");
  EXPECT_EQ(c[0].params.at("scope"), "repository:library/busybox:pull");
}

TEST(WwwAuthenticate, BasicWithUnquotedRealmAndSpaces) {
  auto c = parse_www_authenticate("basic   Realm=registry ,  charset=\"UTF-8\"");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params.at("realm"), "registry");
  EXPECT_EQ(c[0].params.at("charset"), "UTF-8");
}

TEST(WwwAuthenticate, SeveralChallengesInOneHeader) {
  auto c = parse_www_authenticate(R"(Basic realm="a, b", Bearer realm="https://t/token",scope="x y")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params.at("realm"), "a, b");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].params.at("scope"), "x y");
}

TEST(WwwAuthenticate, EscapesInQuotedValuesAndSchemeWithoutParams) {
  auto c = parse_www_authenticate(R"(Bearer realm="a\"b\\c")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params.at("realm"), "a\"b\\c");
  auto bare = parse_www_authenticate("Negotiate");
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_EQ(bare[0].scheme, "negotiate");
  EXPECT_TRUE(bare[0].params.empty());
}

TEST(WwwAuthenticate, GarbageYieldsNoCrashAndNoParams) {
  for (const std::string& v :
       std::vector<std::string>{"", ",,,", "=\"x\"", "Bearer realm=\"unterminated", "Bearer ,realm"}) {
    auto c = parse_www_authenticate(v);  // must not crash or loop
    for (const auto& ch : c) EXPECT_FALSE(ch.scheme.empty()) << v;
  }
  auto c = parse_www_authenticate("Bearer realm=\"unterminated");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params.at("realm"), "unterminated");
}

TEST(Scope, PullScopeNamesTheRepository) {
  EXPECT_EQ(pull_scope("library/busybox"), "repository:library/busybox:pull");
}

}  // namespace
}  // namespace ctrd::remotes
