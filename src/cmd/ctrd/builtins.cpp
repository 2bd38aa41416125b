#include "cmd/ctrd/builtins.h"

#include "content/local/plugin.h"
#include "cri/plugin.h"
#include "diff/walking.h"
#include "events/plugin.h"
#include "gc/scheduler.h"
#include "metadata/plugin.h"
#include "monitor/monitor.h"
#include "proxy/plugin.h"
#include "restart/monitor.h"
#include "runtime/v2/plugin.h"
#include "services/containers/containers.h"
#include "services/content/content.h"
#include "services/diff/diff.h"
#include "services/events/events.h"
#include "services/healthcheck/healthcheck.h"
#include "services/images/images.h"
#include "services/introspection/introspection.h"
#include "services/leases/leases.h"
#include "services/namespaces/namespaces.h"
#include "services/snapshots/snapshots.h"
#include "services/tasks/tasks.h"
#include "services/version/version.h"
#include "snapshots/native/plugin.h"
#include "snapshots/overlay/plugin.h"

namespace ctrd::cmd {

void register_builtins(plugin::Registry& registry) {
  // Base plugins.
  events::register_plugin(registry);
  content::local::register_plugin(registry);
  snapshots::overlay::register_plugin(registry);
  snapshots::native::register_plugin(registry);
  metadata::register_plugin(registry);
  gc::register_plugin(registry);
  diff::register_plugin(registry);
  runtime::v2::register_plugin(registry);
  monitor::register_plugin(registry);
  // Services and their gRPC front ends.
  services::content::register_plugin(registry);
  services::namespaces::register_plugin(registry);
  services::leases::register_plugin(registry);
  services::snapshots::register_plugin(registry);
  services::diff::register_plugin(registry);
  services::images::register_plugin(registry);
  services::containers::register_plugin(registry);
  services::tasks::register_plugin(registry);
  restart::register_plugin(registry);
  services::introspection::register_plugin(registry);
  services::events::register_plugin(registry);
  services::version::register_plugin(registry);
  services::healthcheck::register_plugin(registry);
  cri::register_plugin(registry);
}

errdefs::Status register_config_plugins(plugin::Registry& registry, const config::ServerConfig& config) {
  return proxy::register_proxy_plugins(registry, config);
}

}  // namespace ctrd::cmd
