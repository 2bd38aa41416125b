// services/tasks: containerd's tasks API.
//   io.containerd.service.v1.tasks-service — tasks of the metadata store's
//     containers, run by the runtime (runtime/runtime.h) and watched by the task
//     monitor;
//   io.containerd.grpc.v1.tasks            — its gRPC front end
//     (containerd.services.tasks.v1.Tasks).
// The task events (/tasks/create, start, exit, delete, exec-added, ...) come
// from the shims through the daemon's ttRPC Events/Forward, in their order;
// this service publishes only what no shim can (a dead shim's task removed).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "filters/filters.h"
#include "metadata/db.h"
#include "monitor/monitor.h"
#include "plugin/plugin.h"
#include "runtime/runtime.h"

namespace ctrd::services::tasks {

struct CreateRequest {
  std::string container_id;
  std::vector<mount::Mount> rootfs;  // as the client resolved them from the snapshotter
  runtime::IO io;
  std::optional<runtime::Any> options;  // task (runc) options
  std::string runtime_path;             // overrides the container's runtime when set
  bool checkpoint = false;              // restore from a checkpoint (needs CRIU)
};

class TasksService {
 public:
  TasksService(std::shared_ptr<metadata::DB> db, std::shared_ptr<runtime::Runtime> tasks,
               std::shared_ptr<monitor::TaskMonitor> monitor)
      : db_(std::move(db)), tasks_(std::move(tasks)), monitor_(std::move(monitor)) {}

  // The container must exist (NotFound otherwise); AlreadyExists when it has
  // a task. Returns the new task (created, not started).
  errdefs::StatusOr<std::shared_ptr<runtime::Task>> create(const std::string& ns, const CreateRequest& r);
  // The container's task: NotFound "task <id> not found" when it has none,
  // NotFound for the container when it does not exist.
  errdefs::StatusOr<std::shared_ptr<runtime::Task>> task(const std::string& ns, const std::string& id);
  // The namespace's tasks.
  std::vector<std::shared_ptr<runtime::Task>> list(const std::string& ns);
  // Deletes the task (its init process must have exited): its exit.
  errdefs::StatusOr<runtime::Exit> remove(const std::string& ns, const std::string& id);

  // The process's state. As containerd: a process that is gone is NotFound;
  // any other failure still answers, in status kUnknown, so that one
  // unresponsive shim does not fail a whole List.
  errdefs::StatusOr<runtime::ProcessState> state(runtime::Task& task, const std::string& exec_id);
  // The state of every task's init process in the namespace (those deleted
  // meanwhile left out).
  std::vector<runtime::ProcessState> states(const std::string& ns);
  // InvalidArgument for an empty exec id, as containerd.
  errdefs::Status exec(runtime::Task& task, const std::string& exec_id, const runtime::IO& io,
                       const runtime::Any& spec);
  // Stdin is the only stream a client can close; a request for none is a no-op.
  errdefs::Status close_io(runtime::Task& task, const std::string& exec_id, bool close_stdin);
  // Needs CRIU: FailedPrecondition without it, NotImplemented with it.
  errdefs::Status checkpoint(runtime::Task& task);

  struct TaskMetrics {
    std::string id;
    runtime::SystemTime collected_at;
    runtime::Any stats;
  };
  // Statistics of the namespace's tasks that `filter` matches (fields id,
  // namespace, runtime); tasks without statistics are left out.
  std::vector<TaskMetrics> metrics(const std::string& ns, const filters::Filter& filter);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<runtime::Runtime> tasks_;
  std::shared_ptr<monitor::TaskMonitor> monitor_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::tasks
