// services/introspection: what the daemon is running.
//   io.containerd.service.v1.introspection-service  — the plugin list and the
//     server's UUID (created once, kept under the plugin's root);
//   io.containerd.grpc.v1.introspection             — its gRPC front end
//     (containerd.services.introspection.v1.Introspection).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "plugin/plugin.h"

namespace ctrd::services::introspection {

class IntrospectionService {
 public:
  IntrospectionService(std::shared_ptr<const plugin::Set> plugins, std::string root);

  // Plugins matching any of `filters` (containerd's syntax; fields type, id),
  // in init order. A bad filter is InvalidArgument.
  errdefs::StatusOr<std::vector<const plugin::Plugin*>> plugins(
      const std::vector<std::string>& filters) const;
  // The server's UUID, generated on first use and kept in <root>/uuid.
  errdefs::StatusOr<std::string> uuid();

 private:
  // Weak: the set owns this service's own plugin, so a strong reference would be a cycle.
  std::weak_ptr<const plugin::Set> plugins_;
  std::string root_;
  std::mutex mu_;
  std::string uuid_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::introspection
