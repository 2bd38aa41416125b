#include "services/tasks/tasks.h"

#include "services/tasks/criu.h"

namespace ctrd::services::tasks {
namespace {

// containerd answers every failed task lookup this way, whatever the runtime
// said, so clients can test for NotFound alone.
errdefs::Status task_not_found(const std::string& id) {
  return errdefs::NotFound("task " + id + " not found");
}

}  // namespace

errdefs::StatusOr<std::shared_ptr<runtime::Task>> TasksService::create(const std::string& ns,
                                                                       const CreateRequest& r) {
  CTRD_ASSIGN_OR_RETURN(auto container, db_->containers(ns).get(r.container_id));
  if (r.checkpoint) return criu_unsupported("checkpoint restore");
  // Checked here, before a shim is started for nothing, and worded as containerd's.
  if (tasks_->get(ns, r.container_id).ok()) {
    return errdefs::AlreadyExists("task " + r.container_id + ": already exists");
  }

  runtime::CreateOptions options;
  options.spec = std::move(container.spec.value);
  options.rootfs = r.rootfs;
  options.io = r.io;
  options.runtime = r.runtime_path.empty() ? container.runtime.name : r.runtime_path;
  if (!container.runtime.options.type_url.empty()) {
    runtime::Any any;
    any.set_type_url(std::move(container.runtime.options.type_url));
    any.set_value(std::move(container.runtime.options.value));
    options.runtime_options = std::move(any);
  }
  options.task_options = r.options;

  CTRD_ASSIGN_OR_RETURN(auto task, tasks_->create(ns, r.container_id, options));
  monitor_->monitor(task);
  return task;
}

errdefs::StatusOr<std::shared_ptr<runtime::Task>> TasksService::task(const std::string& ns,
                                                                     const std::string& id) {
  CTRD_RETURN_IF_ERROR(db_->containers(ns).get(id).status());
  auto task = tasks_->get(ns, id);
  if (!task.ok()) return task_not_found(id);
  return task;
}

std::vector<std::shared_ptr<runtime::Task>> TasksService::list(const std::string& ns) {
  return tasks_->list(ns);
}

errdefs::StatusOr<runtime::Exit> TasksService::remove(const std::string& ns, const std::string& id) {
  CTRD_RETURN_IF_ERROR(task(ns, id).status());
  CTRD_ASSIGN_OR_RETURN(auto exit, tasks_->remove(ns, id));
  // Only once the task is gone: a refused delete (the task still runs) must
  // leave it monitored.
  monitor_->stop(ns, id);
  return exit;
}

}  // namespace ctrd::services::tasks
