#include <gtest/gtest.h>

#include <string>

#include "content/content.h"

namespace ctrd::content {
namespace {

const std::string kValidHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(ContentValidateDigest, AcceptsSha256WithLowercaseHex) {
  EXPECT_TRUE(validate_digest("sha256:" + kValidHex).ok());
}

TEST(ContentValidateDigest, RejectsMalformedDigestsNamingThem) {
  const std::string upper = "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
  for (const std::string& bad :
       {std::string("sha256:") + kValidHex.substr(1), "sha512:" + kValidHex, kValidHex, upper,
        "sha256:" + kValidHex + "0", "sha256:" + kValidHex.substr(0, 63) + "g", std::string("sha256:")}) {
    errdefs::Status status = validate_digest(bad);
    EXPECT_EQ(status.code(), errdefs::Code::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find(bad), std::string::npos) << status.message();
  }
  EXPECT_EQ(validate_digest("").code(), errdefs::Code::kInvalidArgument);
}

TEST(ContentValidateDigest, KeepsMessagesShortForHugeInput) {
  errdefs::Status status = validate_digest(std::string(100000, 'x'));
  EXPECT_EQ(status.code(), errdefs::Code::kInvalidArgument);
  EXPECT_LT(status.message().size(), 300u);
}

}  // namespace
}  // namespace ctrd::content
