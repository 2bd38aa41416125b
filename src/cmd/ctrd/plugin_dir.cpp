#include "cmd/ctrd/plugin_dir.h"

#include "log/log.h"
#include "plugin/loader.h"

namespace ctrd::cmd {

void load_plugin_dir(plugin::Registry& registry, const config::ServerConfig& config) {
  if (config.plugin_dir.empty()) return;
  auto files = plugin::load_plugin_dir(config.plugin_dir, registry);
  if (!files.ok()) {
    log::warn("failed to load plugins from plugin_dir",
              {{"dir", config.plugin_dir}, {"error", files.status().message()}});
    return;
  }
  for (const auto& f : *files) {
    if (!f.status.ok()) {
      log::warn(f.status.message(), {{"file", f.path}});
      continue;
    }
    std::string ids;
    for (const auto& uri : f.registered) ids += (ids.empty() ? "" : ",") + uri;
    log::info("loaded plugin file", {{"file", f.path}, {"plugins", ids}});
  }
}

}  // namespace ctrd::cmd
