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
#pragma once

#include <google/protobuf/any.pb.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "mount/mount.h"
#include "runtime/runtime.h"

namespace containerd::task::v2 {
class StateResponse;
}
namespace containerd::v1::types {
class ProcessInfo;
}

namespace ctrd::events {
class Exchange;
}
namespace ctrd::metadata {
class DB;
}

namespace ctrd::runtime::v2 {

using runtime::Any;
using runtime::CreateOptions;
using runtime::Exit;
using runtime::IO;
using runtime::ProcessState;
using runtime::Status;
using runtime::SystemTime;

class Shim;

// A runtime::Task run by a shim. Safe to use from any thread.
class ShimTask final : public runtime::Task, public std::enable_shared_from_this<ShimTask> {
 public:
  ShimTask(std::string ns, std::string id, std::string runtime, std::string bundle);
  ~ShimTask() override;
  ShimTask(const ShimTask&) = delete;
  ShimTask& operator=(const ShimTask&) = delete;

  const std::string& ns() const override { return ns_; }
  const std::string& id() const override { return id_; }
  const std::string& runtime() const override { return runtime_; }
  const std::string& bundle() const override { return bundle_; }
  uint32_t pid() const override;

  errdefs::StatusOr<uint32_t> start(const std::string& exec_id) override;
  errdefs::StatusOr<ProcessState> state(const std::string& exec_id) override;
  errdefs::Status kill(const std::string& exec_id, uint32_t signal, bool all) override;
  errdefs::Status exec(const std::string& exec_id, const IO& io, const Any& spec) override;
  errdefs::StatusOr<Exit> delete_process(const std::string& exec_id) override;
  errdefs::Status resize_pty(const std::string& exec_id, uint32_t width, uint32_t height) override;
  errdefs::Status close_io(const std::string& exec_id) override;
  errdefs::Status pause() override;
  errdefs::Status resume() override;
  errdefs::StatusOr<std::vector<containerd::v1::types::ProcessInfo>> pids() override;
  errdefs::StatusOr<Any> stats(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) override;
  errdefs::Status update(const Any& resources,
                         const std::map<std::string, std::string>& annotations) override;
  errdefs::Status checkpoint(const std::string& path, const std::optional<Any>& options) override;
  void wait(const std::string& exec_id, WaitCallback done) override;
  // True once the shim is gone.
  bool dead() const override;

 private:
  friend class TaskManager;
  std::shared_ptr<Shim> shim() const;
  std::optional<Exit> dead_exit() const;
  void attach(std::shared_ptr<Shim> shim, uint32_t pid);
  // The shim is gone: every call now answers from `exit`; waiters get it.
  void mark_dead(Exit exit);

  const std::string ns_;
  const std::string id_;
  const std::string runtime_;
  const std::string bundle_;
  mutable std::mutex mu_;
  std::shared_ptr<Shim> shim_;
  uint32_t pid_ = 0;
  std::optional<Exit> dead_exit_;
  std::vector<WaitCallback> init_waiters_;  // waits cut short by the shim's death
};

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

// The shim binary for a runtime name: "io.containerd.runc.v2" ->
// "containerd-shim-runc-v2" (empty if the name has fewer than two parts).
std::string shim_binary_name(const std::string& runtime);

}  // namespace ctrd::runtime::v2
