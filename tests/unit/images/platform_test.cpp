#include "images/platform.h"

#include <sys/utsname.h>

#include <gtest/gtest.h>

namespace ctrd::images {
namespace {

TEST(PlatformTest, NormalizeUsesGoNamesAndDropsBaselineVariants) {
  EXPECT_EQ(normalize({"Linux", "x86_64", ""}), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(normalize({"linux", "amd64", "v1"}), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(normalize({"linux", "aarch64", "v8"}), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(normalize({"linux", "arm64", "8"}), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(normalize({"linux", "arm", ""}), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(normalize({"linux", "arm", "6"}), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(normalize({"linux", "armhf", ""}), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(normalize({"linux", "armel", ""}), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(normalize({"linux", "i386", ""}), (Platform{"linux", "386", ""}));
  EXPECT_EQ(normalize({"", "ppc64le", ""}), (Platform{"linux", "ppc64le", ""}));
  EXPECT_EQ(normalize({"macos", "arm64", ""}), (Platform{"darwin", "arm64", ""}));
}

TEST(PlatformTest, Format) {
  EXPECT_EQ(format({"linux", "amd64", ""}), "linux/amd64");
  EXPECT_EQ(format({"linux", "arm", "v7"}), "linux/arm/v7");
  EXPECT_EQ(format({}), "unknown");
}

TEST(PlatformTest, MachineNamesBecomeGoArchitectures) {
  EXPECT_EQ(platform_for_machine("x86_64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(platform_for_machine("aarch64"), (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(platform_for_machine("armv7l"), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(platform_for_machine("armv6l"), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(platform_for_machine("armv5tel"), (Platform{"linux", "arm", "v5"}));
  EXPECT_EQ(platform_for_machine("i686"), (Platform{"linux", "386", ""}));
  EXPECT_EQ(platform_for_machine("ppc64le"), (Platform{"linux", "ppc64le", ""}));
  EXPECT_EQ(platform_for_machine("s390x"), (Platform{"linux", "s390x", ""}));
  EXPECT_EQ(platform_for_machine("riscv64"), (Platform{"linux", "riscv64", ""}));
}

TEST(PlatformTest, HostPlatformIsUnameInGoNames) {
  struct utsname name {};
  ASSERT_EQ(::uname(&name), 0);
  const Platform host = host_platform();
  EXPECT_EQ(host, platform_for_machine(name.machine));
  EXPECT_EQ(host.os, "linux");
  if (std::string_view(name.machine) == "x86_64") {
    EXPECT_EQ(host, (Platform{"linux", "amd64", ""}));
  }
}

TEST(PlatformMatcherTest, Amd64RunsAmd64Then386Only) {
  const PlatformMatcher matcher({"linux", "amd64", ""});
  EXPECT_EQ(matcher.rank({"linux", "amd64", ""}), 0u);
  EXPECT_EQ(matcher.rank({"linux", "x86_64", ""}), 0u);
  EXPECT_EQ(matcher.rank({"linux", "386", ""}), 1u);
  EXPECT_FALSE(matcher.matches({"linux", "arm64", ""}));
  EXPECT_FALSE(matcher.matches({"linux", "ppc64le", ""}));
  EXPECT_FALSE(matcher.matches({"windows", "amd64", ""}));
  EXPECT_FALSE(matcher.matches({"linux", "amd64", "v2"}));
}

TEST(PlatformMatcherTest, Amd64LevelRunsLowerLevels) {
  const PlatformMatcher matcher({"linux", "amd64", "v3"});
  EXPECT_EQ(matcher.rank({"linux", "amd64", "v3"}), 0u);
  EXPECT_EQ(matcher.rank({"linux", "amd64", "v2"}), 1u);
  EXPECT_EQ(matcher.rank({"linux", "amd64", ""}), 2u);
  EXPECT_EQ(matcher.rank({"linux", "386", ""}), 3u);
}

TEST(PlatformMatcherTest, ArmV7PrefersV7ThenV6ThenV5) {
  const PlatformMatcher matcher({"linux", "arm", "v7"});
  EXPECT_EQ(matcher.rank({"linux", "arm", "v7"}), 0u);
  EXPECT_EQ(matcher.rank({"linux", "arm", ""}), 0u);  // arm without a variant is v7
  EXPECT_EQ(matcher.rank({"linux", "arm", "v6"}), 1u);
  EXPECT_EQ(matcher.rank({"linux", "arm", "v5"}), 2u);
  EXPECT_FALSE(matcher.matches({"linux", "arm", "v8"}));
  EXPECT_FALSE(matcher.matches({"linux", "arm64", ""}));
}

TEST(PlatformMatcherTest, Arm64VariantlessIsV8AndRuns32BitArm) {
  for (const Platform& host : {Platform{"linux", "arm64", ""}, Platform{"linux", "arm64", "v8"}}) {
    const PlatformMatcher matcher(host);
    EXPECT_EQ(matcher.rank({"linux", "arm64", ""}), 0u) << format(host);
    EXPECT_EQ(matcher.rank({"linux", "arm64", "v8"}), 0u) << format(host);
    EXPECT_EQ(matcher.rank({"linux", "arm", "v8"}), 1u) << format(host);
    EXPECT_EQ(matcher.rank({"linux", "arm", "v7"}), 2u) << format(host);
    EXPECT_FALSE(matcher.matches({"linux", "amd64", ""})) << format(host);
  }
}

}  // namespace
}  // namespace ctrd::images
