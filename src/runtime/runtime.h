// runtime: what running containers means to the rest of the daemon — a
// Runtime holds Tasks (a container's init process and its execs), each
// Process has IO, a state and, in the end, an Exit — independent of how the
// runtime does it. The runtime v2 plugin (shims over ttRPC) implements it; the
// tasks service, the task monitor and the restart monitor use only this.
//
// Every call may be made from any thread. Calls that reach a process may
// block for a round trip to whatever runs it (a shim, tens of milliseconds);
// wait() never blocks.
#pragma once

#include <google/protobuf/any.pb.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "mount/mount.h"

namespace containerd::v1::types {
class ProcessInfo;
}

namespace ctrd::runtime {

using Any = google::protobuf::Any;
using SystemTime = std::chrono::system_clock::time_point;

struct IO {
  std::string stdin;  // paths (fifos) or URIs the runtime opens; empty for none
  std::string stdout;
  std::string stderr;
  bool terminal = false;
};

struct CreateOptions {
  std::string spec;                  // the OCI runtime spec, JSON (the container's spec Any value)
  std::vector<mount::Mount> rootfs;  // mounted by the runtime onto the bundle's rootfs
  IO io;
  std::string checkpoint;  // a checkpoint image directory to restore from
  // A runtime name ("io.containerd.runc.v2") or a shim binary's absolute path.
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

// One task: a container's init process and its exec processes. Process-level
// calls take an exec id; an empty one means the init process.
class Task {
 public:
  virtual ~Task() = default;

  virtual const std::string& ns() const = 0;
  virtual const std::string& id() const = 0;
  // The runtime as the container named it (io.containerd.runc.v2).
  virtual const std::string& runtime() const = 0;
  virtual const std::string& bundle() const = 0;
  virtual uint32_t pid() const = 0;

  virtual errdefs::StatusOr<uint32_t> start(const std::string& exec_id) = 0;
  virtual errdefs::StatusOr<ProcessState> state(const std::string& exec_id) = 0;
  virtual errdefs::Status kill(const std::string& exec_id, uint32_t signal, bool all) = 0;
  virtual errdefs::Status exec(const std::string& exec_id, const IO& io, const Any& spec) = 0;
  // Removes an exec process that has exited (the init process goes with
  // Runtime::remove).
  virtual errdefs::StatusOr<Exit> delete_process(const std::string& exec_id) = 0;
  virtual errdefs::Status resize_pty(const std::string& exec_id, uint32_t width, uint32_t height) = 0;
  virtual errdefs::Status close_io(const std::string& exec_id) = 0;
  virtual errdefs::Status pause() = 0;
  virtual errdefs::Status resume() = 0;
  virtual errdefs::StatusOr<std::vector<containerd::v1::types::ProcessInfo>> pids() = 0;
  // cgroup statistics (io.containerd.cgroups.v1.Metrics or v2).
  virtual errdefs::StatusOr<Any> stats(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) = 0;
  virtual errdefs::Status update(const Any& resources,
                                 const std::map<std::string, std::string>& annotations) = 0;
  virtual errdefs::Status checkpoint(const std::string& path, const std::optional<Any>& options) = 0;

  // Calls `done` once the process has exited (at once if it has), on a
  // thread of the runtime's: no thread waits meanwhile.
  using WaitCallback = std::function<void(errdefs::StatusOr<Exit>)>;
  virtual void wait(const std::string& exec_id, WaitCallback done) = 0;

  // True once whatever ran the task is gone; it then reports the exit of its cleanup.
  virtual bool dead() const = 0;
};

// One process of a task, named once: what a caller holding an exec id uses.
class Process {
 public:
  Process(std::shared_ptr<Task> task, std::string exec_id)
      : task_(std::move(task)), exec_id_(std::move(exec_id)) {}

  const std::shared_ptr<Task>& task() const { return task_; }
  // The exec id; empty for the init process.
  const std::string& exec_id() const { return exec_id_; }

  errdefs::StatusOr<uint32_t> start() { return task_->start(exec_id_); }
  errdefs::StatusOr<ProcessState> state() { return task_->state(exec_id_); }
  errdefs::Status kill(uint32_t signal, bool all = false) { return task_->kill(exec_id_, signal, all); }
  errdefs::Status resize_pty(uint32_t width, uint32_t height) {
    return task_->resize_pty(exec_id_, width, height);
  }
  errdefs::Status close_io() { return task_->close_io(exec_id_); }
  void wait(Task::WaitCallback done) { task_->wait(exec_id_, std::move(done)); }

 private:
  std::shared_ptr<Task> task_;
  std::string exec_id_;
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  // Creates the task (not started). AlreadyExists if the namespace has a task
  // with that id. On failure nothing of it is left.
  virtual errdefs::StatusOr<std::shared_ptr<Task>> create(const std::string& ns, const std::string& id,
                                                          const CreateOptions& options) = 0;
  // NotFound naming the task when there is none.
  virtual errdefs::StatusOr<std::shared_ptr<Task>> get(const std::string& ns,
                                                       const std::string& id) const = 0;
  // The namespace's tasks; every namespace's when `ns` is empty.
  virtual std::vector<std::shared_ptr<Task>> list(const std::string& ns) const = 0;
  // Deletes the task's init process and whatever ran it; the task's exit.
  // FailedPrecondition while it runs.
  virtual errdefs::StatusOr<Exit> remove(const std::string& ns, const std::string& id) = 0;
};

}  // namespace ctrd::runtime
