#include "monitor/monitor.h"

namespace ctrd::monitor {

void TaskMonitor::monitor(std::shared_ptr<runtime::v2::Task> task) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(task->ns(), task->id());
  tasks_[std::move(key)] = std::move(task);
}

void TaskMonitor::stop(const std::string& ns, const std::string& id) {
  std::lock_guard lock(mu_);
  tasks_.erase({ns, id});
}

std::vector<std::shared_ptr<runtime::v2::Task>> TaskMonitor::tasks() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<runtime::v2::Task>> out;
  out.reserve(tasks_.size());
  for (const auto& [key, task] : tasks_) out.push_back(task);
  return out;
}

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kTaskMonitor),
      .id = "cgroups",
      .init = [](plugin::InitContext&) -> errdefs::StatusOr<plugin::Instance> {
        return plugin::Instance::of(std::make_shared<TaskMonitor>());
      },
  });
}

}  // namespace ctrd::monitor
