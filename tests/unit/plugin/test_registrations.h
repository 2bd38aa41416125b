// A registration for the plugin tests: a type, an id, requirements, and an
// init that makes an empty instance.
#pragma once

#include <string>
#include <vector>

#include "plugin/plugin.h"

namespace ctrd::plugin {

inline Registration reg(std::string type, std::string id, std::vector<std::string> requirements = {}) {
  Registration r;
  r.type = std::move(type);
  r.id = std::move(id);
  r.requirements = std::move(requirements);
  r.init = [](InitContext&) -> errdefs::StatusOr<Instance> { return Instance(); };
  return r;
}

}  // namespace ctrd::plugin
