#include "content/content.h"

#include <string>

namespace ctrd::content {
namespace {

constexpr std::string_view kAlgorithmPrefix = "sha256:";
constexpr size_t kHexLength = 64;
using errdefs::quoted;

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

errdefs::Status validate_digest(std::string_view digest) {
  auto invalid = [&](std::string_view why) {
    return errdefs::InvalidArgument("invalid digest " + quoted(digest) + ": " + std::string(why));
  };
  if (digest.empty()) return errdefs::InvalidArgument("invalid digest \"\": empty");
  if (!digest.starts_with(kAlgorithmPrefix)) {
    return invalid("unsupported algorithm, want sha256:<64 lowercase hex characters>");
  }
  std::string_view hex = digest.substr(kAlgorithmPrefix.size());
  if (hex.size() != kHexLength) {
    return invalid("want 64 hex characters after \"sha256:\", got " + std::to_string(hex.size()));
  }
  for (char c : hex) {
    if (!is_lower_hex(c)) return invalid("not lowercase hex");
  }
  return errdefs::Status::Ok();
}

}  // namespace ctrd::content
