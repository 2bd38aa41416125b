// chain_id against digests computed here with OpenSSL, and against vectors
// computed outside ctrd (Python's hashlib, the formula of image-spec's
// identity.ChainID).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "support/digest.h"
#include "unpack/unpack.h"

namespace ctrd::unpack {
namespace {

using ctrd::testing::sha256_digest;

TEST(ChainId, NoLayersHasNoChainId) { EXPECT_EQ(chain_id({}), ""); }

TEST(ChainId, BottomLayerIsItsDiffId) {
  const std::string diff = sha256_digest("a");
  EXPECT_EQ(chain_id({diff}), diff);
}

TEST(ChainId, EachLayerHashesParentChainSpaceDiffId) {
  const std::string a = sha256_digest("a");
  const std::string b = sha256_digest("b");
  const std::string c = sha256_digest("c");
  const std::string ab = sha256_digest(a + " " + b);
  EXPECT_EQ(chain_id({a, b}), ab);
  EXPECT_EQ(chain_id({a, b, c}), sha256_digest(ab + " " + c));
  EXPECT_NE(chain_id({b, a}), ab) << "order matters";
}

TEST(ChainId, MatchesVectorsComputedOutsideCtrd) {
  // sha256 of "a", "b" and "c"; chains computed with Python's hashlib.
  const std::string a = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
  const std::string b = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
  const std::string c = "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";
  EXPECT_EQ(chain_id({a, b}), "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676");
  EXPECT_EQ(chain_id({a, b, c}), "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106");
}

}  // namespace
}  // namespace ctrd::unpack
