#include "runtime/v2/lost_shims.h"

#include <chrono>

#include "log/log.h"
#include "runtime/v2/bundle.h"
#include "runtime/v2/shim_task.h"

namespace ctrd::runtime::v2 {

runtime::Exit LostShims::clean_up(const ShimBinary& binary, const ShimTask& task) const {
  const Bundle bundle = Bundle::at(state_dir_, task.ns(), task.id());
  log::warn("cleaning up after shim disconnected", {{"id", task.id()}, {"namespace", task.ns()}});
  runtime::Exit exit{task.pid(), 255, std::chrono::system_clock::now()};
  if (auto reported = Shim::cleanup(binary, bundle); reported.ok()) {
    exit = *reported;
    if (exit.pid == 0) exit.pid = task.pid();
  } else {
    log::warn("failed to clean up after shim disconnected",
              {{"id", task.id()}, {"error", reported.status().message()}});
  }
  if (errdefs::Status removed = bundle.remove(); !removed.ok())
    log::error("failed to delete bundle", {{"id", task.id()}, {"error", removed.message()}});
  return exit;
}

runtime::Exit LostShims::bury(const ShimBinary& binary, ShimTask& task) const {
  const runtime::Exit exit = clean_up(binary, task);
  task.mark_dead(exit);
  events_.exit(task, exit);
  return exit;
}

}  // namespace ctrd::runtime::v2
