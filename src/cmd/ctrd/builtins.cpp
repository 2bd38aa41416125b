#include "cmd/ctrd/builtins.h"

#include "content/local/plugin.h"
#include "events/plugin.h"
#include "metadata/plugin.h"
#include "services/content/content.h"
#include "services/events/events.h"
#include "services/healthcheck/healthcheck.h"
#include "services/introspection/introspection.h"
#include "services/leases/leases.h"
#include "services/namespaces/namespaces.h"
#include "services/version/version.h"

namespace ctrd::cmd {

void register_builtins(plugin::Registry& registry) {
  // Base plugins.
  events::register_plugin(registry);
  content::local::register_plugin(registry);
  metadata::register_plugin(registry);
  // Services and their gRPC front ends.
  services::content::register_plugin(registry);
  services::namespaces::register_plugin(registry);
  services::leases::register_plugin(registry);
  services::introspection::register_plugin(registry);
  services::events::register_plugin(registry);
  services::version::register_plugin(registry);
  services::healthcheck::register_plugin(registry);
}

}  // namespace ctrd::cmd
