// identifiers: the rule containerd applies to namespaces, lease ids, container
// ids and topic components: alphanumeric words joined by single '.', '_' or '-',
// at most 76 characters. Violations are InvalidArgument naming the value.
#pragma once

#include <string_view>

#include "errdefs/errdefs.h"

namespace ctrd::identifiers {

inline constexpr size_t kMaxLength = 76;

errdefs::Status validate(std::string_view id);

}  // namespace ctrd::identifiers
