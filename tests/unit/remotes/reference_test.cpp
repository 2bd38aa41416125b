#include "remotes/reference.h"

#include <gtest/gtest.h>

#include <vector>

namespace ctrd::remotes {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

Reference parsed(std::string_view text) {
  auto r = parse_reference(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().to_string();
  return r.ok() ? *r : Reference{};
}

TEST(Reference, ShortNamesAreDockerHubLibraryImagesAtLatest) {
  EXPECT_EQ(parsed("busybox"), (Reference{"docker.io", "library/busybox", "latest", ""}));
  EXPECT_EQ(parsed("busybox").string(), "docker.io/library/busybox:latest");
  EXPECT_EQ(parsed("team/app:1.0"), (Reference{"docker.io", "team/app", "1.0", ""}));
  EXPECT_EQ(parsed("docker.io/busybox").repository, "library/busybox");
  EXPECT_EQ(parsed("index.docker.io/library/busybox").domain, "docker.io");
}

TEST(Reference, FirstComponentWithDotColonOrLocalhostIsTheDomain) {
  EXPECT_EQ(parsed("127.0.0.1:5000/library/busybox:1"),
            (Reference{"127.0.0.1:5000", "library/busybox", "1", ""}));
  EXPECT_EQ(parsed("localhost/app"), (Reference{"localhost", "app", "latest", ""}));
  EXPECT_EQ(parsed("registry.example.com/a/b/c"), (Reference{"registry.example.com", "a/b/c", "latest", ""}));
  // Not a domain: no dot, no port, not localhost.
  EXPECT_EQ(parsed("myregistry/app").domain, "docker.io");
  EXPECT_EQ(parsed("[::1]:5000/app").domain, "[::1]:5000");
}

TEST(Reference, DigestPinsTheContentWithOrWithoutATag) {
  Reference by_digest = parsed("busybox@" + kDigest);
  EXPECT_EQ(by_digest.tag, "");
  EXPECT_EQ(by_digest.digest, kDigest);
  EXPECT_EQ(by_digest.object(), kDigest);
  EXPECT_EQ(by_digest.string(), "docker.io/library/busybox@" + kDigest);
  Reference both = parsed("host:5000/app:v1@" + kDigest);
  EXPECT_EQ(both.tag, "v1");
  EXPECT_EQ(both.object(), kDigest);
  EXPECT_EQ(both.string(), "host:5000/app:v1@" + kDigest);
}

TEST(Reference, InvalidReferencesAreRefused) {
  for (const std::string& bad : std::vector<std::string>{
           "", "Busybox", "busybox:", "busybox:-x", "busybox@sha256:abc",
           "busybox@md5:" + std::string(32, 'a'), "/busybox", "busybox/", "a//b", "host:port/app", "-a/b",
           "a--/b", std::string(64, 'f'), "host:5000/" + std::string(300, 'a'),
           "busybox:" + std::string(129, 't'), "a..b"}) {
    auto r = parse_reference(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), errdefs::Code::kInvalidArgument) << bad;
    }
  }
}

TEST(Reference, SeparatorsInsidePathComponents) {
  EXPECT_TRUE(parse_reference("a_b/c__d/e-f/g---h/i.j").ok());
  EXPECT_FALSE(parse_reference("a___b").ok());
}

TEST(Reference, HostnameDropsThePort) {
  EXPECT_EQ(hostname_of("127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(hostname_of("docker.io"), "docker.io");
  EXPECT_EQ(hostname_of("[::1]:5000"), "::1");
}

}  // namespace
}  // namespace ctrd::remotes
