#include "services/tasks/tasks.h"

#include "log/log.h"
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

errdefs::StatusOr<runtime::ProcessState> TasksService::state(runtime::Task& task,
                                                             const std::string& exec_id) {
  auto state = task.state(exec_id);
  if (state.ok() || errdefs::IsNotFound(state.status())) return state;
  const std::string id = exec_id.empty() ? task.id() : exec_id;
  log::error("get state", {{"id", id}, {"error", state.status().to_string()}});
  return runtime::ProcessState{.id = id, .status = runtime::Status::kUnknown};
}

std::vector<runtime::ProcessState> TasksService::states(const std::string& ns) {
  std::vector<runtime::ProcessState> out;
  for (const auto& task : list(ns)) {
    if (auto s = state(*task, ""); s.ok()) out.push_back(std::move(s).value());
  }
  return out;
}

errdefs::Status TasksService::exec(runtime::Task& task, const std::string& exec_id, const runtime::IO& io,
                                   const runtime::Any& spec) {
  if (exec_id.empty()) return errdefs::InvalidArgument("exec id cannot be empty");
  return task.exec(exec_id, io, spec);
}

errdefs::Status TasksService::close_io(runtime::Task& task, const std::string& exec_id, bool close_stdin) {
  return close_stdin ? task.close_io(exec_id) : errdefs::Status::Ok();
}

errdefs::Status TasksService::checkpoint(runtime::Task&) { return criu_unsupported("checkpoint"); }

std::vector<TasksService::TaskMetrics> TasksService::metrics(const std::string& ns,
                                                             const filters::Filter& filter) {
  std::vector<TaskMetrics> out;
  for (const auto& task : list(ns)) {
    auto fields = [&task](const std::vector<std::string>& path) -> std::optional<std::string> {
      if (path.empty()) return std::nullopt;
      if (path[0] == "id") return task->id();
      if (path[0] == "namespace") return task->ns();
      if (path[0] == "runtime") return task->runtime();
      return std::nullopt;
    };
    if (!filter.match(fields)) continue;
    const auto collected = std::chrono::system_clock::now();
    auto stats = task->stats();
    if (!stats.ok()) {
      if (!errdefs::IsNotFound(stats.status())) {
        log::error("collecting metrics", {{"id", task->id()}, {"error", stats.status().to_string()}});
      }
      continue;
    }
    out.push_back({task->id(), collected, std::move(stats).value()});
  }
  return out;
}

}  // namespace ctrd::services::tasks
