// cri/id_prefix: the look-up CRI clients such as crictl rely on — an object
// named by its whole id, or by a prefix that names exactly one.
#pragma once

#include <iterator>
#include <string>
#include <string_view>

#include "errdefs/errdefs.h"

namespace ctrd::cri {

// `kind` words the NotFound ("sandbox", "container"); a prefix naming several
// objects is NotFound too, saying so.
template <typename Map>
errdefs::StatusOr<typename Map::const_iterator> find_by_id_or_prefix(const Map& objects,
                                                                     const std::string& key,
                                                                     std::string_view kind) {
  if (key.empty()) return errdefs::NotFound(std::string(kind) + " id is empty");
  if (auto it = objects.find(key); it != objects.end()) return it;
  auto it = objects.lower_bound(key);
  if (it == objects.end() || !it->first.starts_with(key))
    return errdefs::NotFound(std::string(kind) + " " + errdefs::quoted(key) + " does not exist");
  if (auto next = std::next(it); next != objects.end() && next->first.starts_with(key))
    return errdefs::NotFound(std::string(kind) + " id prefix " + errdefs::quoted(key) + " is ambiguous");
  return it;
}

}  // namespace ctrd::cri
