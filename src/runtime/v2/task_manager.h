// runtime/v2: containerd's runtime v2 (io.containerd.runtime.v2.task). Each
// task is a container run by a shim process of its own (Debian's
// containerd-shim-runc-v2 for io.containerd.runc.v2), which the TaskManager
// starts in the task's bundle and speaks ttRPC to (containerd.task.v2.Task).
// The shim publishes the task's events itself, through the daemon's ttRPC
// Events/Forward. The TaskManager owns the bundles under its state directory
// and, when the daemon starts, reconnects to the shims found there: a shim
// that is gone is cleaned up (its `delete` action) and its task's exit is
// published, a shim holding no task is shut down.
//
// A task whose shim died stays listed as STOPPED, with the exit the shim's
// cleanup reported, until it is removed, as a task that exited normally does.
//
// The TaskManager itself is the task table (create, get, list, remove, and
// the lost-shim handoff); its parts are the ShimTask (shim_task.h), shim
// launching (shim_launcher.h), recovery (recovery.h), lost shims
// (lost_shims.h) and the events it publishes itself (task_events.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "runtime/runtime.h"
#include "runtime/v2/shim_launcher.h"
#include "runtime/v2/shim_task.h"

namespace ctrd::events {
class Exchange;
}
namespace ctrd::metadata {
class DB;
}

namespace ctrd::runtime::v2 {

struct TaskManagerOptions {
  std::string state_dir;                     // bundles: <state_dir>/<namespace>/<id>
  std::string root_dir;                      // the bundles' work dirs: <root_dir>/<namespace>/<id>
  std::string grpc_address;                  // given to shims as -address
  std::string ttrpc_address;                 // given to shims as TTRPC_ADDRESS (Events/Forward)
  std::string publish_binary;                // given to shims as -publish-binary (this executable)
  bool shim_debug = false;                   // shims log at debug level
  bool sched_core = false;                   // SCHED_CORE=1 for shims (core scheduling)
  std::shared_ptr<events::Exchange> events;  // exits of dead shims are published here
  // Resolves the runtime of a bundle that lacks shim-binary-path (a daemon
  // that stopped mid-create): the container's runtime name. May be null.
  std::shared_ptr<metadata::DB> db;
};

class TaskManager final : public runtime::Runtime, public std::enable_shared_from_this<TaskManager> {
 public:
  // Creates the directories and recovers the tasks of a previous run.
  static errdefs::StatusOr<std::shared_ptr<TaskManager>> open(TaskManagerOptions options);
  ~TaskManager() override;
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Starts a shim for the task and creates it there (not started). On failure
  // the shim, its bundle and the rootfs mounts are gone.
  errdefs::StatusOr<std::shared_ptr<runtime::Task>> create(const std::string& ns, const std::string& id,
                                                           const CreateOptions& options) override;
  errdefs::StatusOr<std::shared_ptr<runtime::Task>> get(const std::string& ns,
                                                        const std::string& id) const override;
  std::vector<std::shared_ptr<runtime::Task>> list(const std::string& ns) const override;
  // Deletes the task's init process, shuts its shim down and removes the bundle.
  errdefs::StatusOr<Exit> remove(const std::string& ns, const std::string& id) override;

 private:
  class Impl;
  explicit TaskManager(std::shared_ptr<Impl> impl);
  // Shared with the threads that clean up after a dead shim.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ctrd::runtime::v2
