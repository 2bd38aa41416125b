#include "runtime/v2/plugin.h"

#include <unistd.h>

#include "log/log.h"
#include "metadata/db.h"
#include "runtime/v2/task_manager.h"

namespace ctrd::runtime::v2 {
namespace {

struct Config {
  // containerd's keys: the platforms the runtime runs (the host's when
  // empty) and core scheduling for shims.
  std::vector<std::string> platforms;
  bool sched_core = false;
  void bind(config::Binder& b) {
    b.field("platforms", platforms);
    b.field("sched_core", sched_core);
  }
};

plugin::Platform parse_platform(const std::string& text) {
  plugin::Platform p;
  const size_t first = text.find('/');
  p.os = text.substr(0, first);
  if (first != std::string::npos) {
    const size_t second = text.find('/', first + 1);
    p.architecture =
        text.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (second != std::string::npos) p.variant = text.substr(second + 1);
  }
  return p;
}

std::string own_executable() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string("ctrd");
}

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kRuntimeV2),
      .id = "task",
      .requirements = {std::string(plugin::type::kEvent), std::string(plugin::type::kMetadata)},
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        if (config.platforms.empty()) {
          ic.meta().platforms.push_back(plugin::host_platform());
        } else {
          for (const auto& p : config.platforms) ic.meta().platforms.push_back(parse_platform(p));
        }
        auto db = ic.get<metadata::DB>(plugin::type::kMetadata);
        CTRD_ASSIGN_OR_RETURN(auto manager,
                              TaskManager::open({.state_dir = ic.state(),
                                                 .root_dir = ic.root(),
                                                 .grpc_address = ic.grpc_address(),
                                                 .ttrpc_address = ic.ttrpc_address(),
                                                 .publish_binary = own_executable(),
                                                 .shim_debug = log::enabled(log::Level::kDebug),
                                                 .sched_core = config.sched_core,
                                                 .events = ic.events(),
                                                 .db = db.ok() ? std::move(db).value() : nullptr}));
        return plugin::Instance::of<TaskManager, runtime::Runtime>(std::move(manager));
      },
  });
}

}  // namespace ctrd::runtime::v2
