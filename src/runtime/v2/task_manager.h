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

using Any = google::protobuf::Any;
using SystemTime = std::chrono::system_clock::time_point;

struct IO {
  std::string stdin;  // paths (fifos) or URIs the shim opens; empty for none
  std::string stdout;
  std::string stderr;
  bool terminal = false;
};

struct CreateOptions {
  std::string spec;                  // the OCI runtime spec, JSON (the container's spec Any value)
  std::vector<mount::Mount> rootfs;  // mounted by the shim onto <bundle>/rootfs
  IO io;
  std::string checkpoint;  // a checkpoint image directory to restore from
  // A runtime name ("io.containerd.runc.v2" -> containerd-shim-runc-v2 on
  // PATH) or the shim binary's absolute path.
  std::string runtime;
  std::optional<Any> runtime_options;  // the container's (runc options)
  std::optional<Any> task_options;     // the request's; they win over the container's
};

struct Exit {
  uint32_t pid = 0;
  uint32_t status = 0;
  SystemTime at;
};

enum class Status { kUnknown, kCreated, kRunning, kStopped, kPaused, kPausing };

struct ProcessState {
  std::string id;  // the container id for the init process, else the exec id
  uint32_t pid = 0;
  Status status = Status::kUnknown;
  IO io;
  uint32_t exit_status = 0;
  SystemTime exited_at;
};

class Shim;

// One task (a container's init process and its execs), through its shim.
// Process-level calls take an exec id; an empty one means the init process.
// Safe to use from any thread.
class Task : public std::enable_shared_from_this<Task> {
 public:
  Task(std::string ns, std::string id, std::string runtime, std::string bundle);
  ~Task();
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  const std::string& ns() const { return ns_; }
  const std::string& id() const { return id_; }
  // The runtime as the container named it (io.containerd.runc.v2).
  const std::string& runtime() const { return runtime_; }
  const std::string& bundle() const { return bundle_; }
  uint32_t pid() const;

  errdefs::StatusOr<uint32_t> start(const std::string& exec_id);
  errdefs::StatusOr<ProcessState> state(const std::string& exec_id);
  errdefs::Status kill(const std::string& exec_id, uint32_t signal, bool all);
  errdefs::Status exec(const std::string& exec_id, const IO& io, const Any& spec);
  // Removes an exec process that has exited (the init process goes with
  // TaskManager::remove).
  errdefs::StatusOr<Exit> delete_process(const std::string& exec_id);
  errdefs::Status resize_pty(const std::string& exec_id, uint32_t width, uint32_t height);
  errdefs::Status close_io(const std::string& exec_id);
  errdefs::Status pause();
  errdefs::Status resume();
  errdefs::StatusOr<std::vector<containerd::v1::types::ProcessInfo>> pids();
  // The shim's cgroup statistics (io.containerd.cgroups.v1.Metrics or v2).
  errdefs::StatusOr<Any> stats(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  errdefs::Status update(const Any& resources, const std::map<std::string, std::string>& annotations);
  errdefs::Status checkpoint(const std::string& path, const std::optional<Any>& options);

  // Calls `done` once the process has exited (at once if it has), on a
  // thread of the runtime's: no thread waits meanwhile.
  using WaitCallback = std::function<void(errdefs::StatusOr<Exit>)>;
  void wait(const std::string& exec_id, WaitCallback done);

  // True once the shim is gone; the task then reports the exit of its cleanup.
  bool dead() const;

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

class TaskManager : public std::enable_shared_from_this<TaskManager> {
 public:
  // Creates the directories and recovers the tasks of a previous run.
  static errdefs::StatusOr<std::shared_ptr<TaskManager>> open(TaskManagerOptions options);
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Starts a shim for the task and creates it there (not started).
  // AlreadyExists if the namespace has a task with that id. On failure the
  // shim, its bundle and the rootfs mounts are gone.
  errdefs::StatusOr<std::shared_ptr<Task>> create(const std::string& ns, const std::string& id,
                                                  const CreateOptions& options);
  // NotFound naming the task when there is none.
  errdefs::StatusOr<std::shared_ptr<Task>> get(const std::string& ns, const std::string& id) const;
  // The namespace's tasks by id; every namespace's when `ns` is empty.
  std::vector<std::shared_ptr<Task>> list(const std::string& ns) const;
  // Deletes the task's init process, shuts its shim down and removes the
  // bundle; the task's exit. FailedPrecondition while it runs.
  errdefs::StatusOr<Exit> remove(const std::string& ns, const std::string& id);

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
