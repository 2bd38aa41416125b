// tests/support/digest: "sha256:<hex>" of some bytes, computed with OpenSSL
// directly rather than through src/digest, so that tests check ctrd's
// digests against an independent computation.
#pragma once

#include <string>
#include <string_view>

namespace ctrd::testing {

std::string sha256_digest(std::string_view data);

}  // namespace ctrd::testing
