#include "identifiers/identifiers.h"

#include <cctype>
#include <string>

namespace ctrd::identifiers {

errdefs::Status validate(std::string_view id) {
  if (id.empty()) return errdefs::InvalidArgument("identifier must not be empty");
  if (id.size() > kMaxLength) {
    return errdefs::InvalidArgument("identifier \"" + std::string(id) + "\" greater than maximum length (" +
                                    std::to_string(kMaxLength) + " characters)");
  }
  bool after_separator = true;  // the first character must be alphanumeric too
  for (char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      after_separator = false;
    } else if ((c == '.' || c == '_' || c == '-') && !after_separator) {
      after_separator = true;
    } else {
      after_separator = true;
      return errdefs::InvalidArgument("identifier \"" + std::string(id) +
                                      "\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
    }
  }
  if (after_separator) {
    return errdefs::InvalidArgument("identifier \"" + std::string(id) +
                                    "\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
  }
  return errdefs::Status::Ok();
}

}  // namespace ctrd::identifiers
