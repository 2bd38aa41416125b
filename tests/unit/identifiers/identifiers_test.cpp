#include <gtest/gtest.h>

#include <string>

#include "identifiers/identifiers.h"

namespace ctrd::identifiers {
namespace {

TEST(Identifiers, AcceptsContainerdStyleNames) {
  for (const char* ok : {"default", "k8s.io", "a", "a-b_c.d", "A1", "foo-bar.baz_1"}) {
    EXPECT_TRUE(validate(ok).ok()) << ok;
  }
}

TEST(Identifiers, RejectsBadNamesNamingThem) {
  for (const char* bad : {"", "-a", "a-", "a..b", "a/b", "a b", ".", "a_-b", "ä"}) {
    auto s = validate(bad);
    EXPECT_EQ(s.code(), errdefs::Code::kInvalidArgument) << bad;
    if (*bad) {
      EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
    }
  }
  EXPECT_FALSE(validate(std::string(77, 'a')).ok());
  EXPECT_TRUE(validate(std::string(76, 'a')).ok());
}

}  // namespace
}  // namespace ctrd::identifiers
