// runtime/v2/recovery: what a daemon start finds under the runtime's state
// directory — the bundles of a previous run. A live shim is reconnected; a
// dead one is cleaned up and its task stays listed, stopped, with the exit
// its cleanup reported; a shim that holds no task (the daemon stopped between
// starting it and creating the task) is shut down and its bundle removed;
// work dirs left without a bundle are removed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/v2/shim.h"

namespace ctrd::metadata {
class DB;
}

namespace ctrd::runtime::v2 {

class LostShims;
class ShimLauncher;
class ShimTask;
class TaskEvents;

struct RecoveredTask {
  std::shared_ptr<ShimTask> task;
  ShimBinary binary;
};

struct RecoveryContext {
  std::string state_dir;
  std::string root_dir;
  ShimLauncher& launcher;
  const LostShims& lost;
  const TaskEvents& events;
  // Names the runtime of a bundle that lacks shim-binary-path: the
  // container's runtime. May be null.
  std::shared_ptr<metadata::DB> db;
  // What a reconnected shim calls when its connection is lost.
  std::function<std::function<void()>(const std::string& ns, const std::string& id)> on_lost;
};

// Hands each task still to be listed to `adopt` as soon as it is known, so
// that a shim lost during recovery finds its task in the table.
void recover_tasks(const RecoveryContext& context, const std::function<void(RecoveredTask)>& adopt);

}  // namespace ctrd::runtime::v2
