#include "monitor/monitor.h"

#include "monitor/cgroup_metrics.h"

namespace ctrd::monitor {

void TaskMonitor::monitor(std::shared_ptr<runtime::Task> task) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(task->ns(), task->id());
  tasks_[std::move(key)] = std::move(task);
}

void TaskMonitor::stop(const std::string& ns, const std::string& id) {
  std::lock_guard lock(mu_);
  tasks_.erase({ns, id});
}

std::vector<std::shared_ptr<runtime::Task>> TaskMonitor::tasks() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<runtime::Task>> out;
  out.reserve(tasks_.size());
  for (const auto& [key, task] : tasks_) out.push_back(task);
  return out;
}

void TaskMonitor::export_metrics(const std::shared_ptr<metrics::Registry>& registry) {
  // A scrape may still run the collector after the handle removed it, so it
  // holds the monitor weakly.
  collector_ = registry->add_collector(metrics::make_collector([weak = weak_from_this()](metrics::Writer& w) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<TaskStats> stats;
    for (const auto& task : self->tasks()) {
      // A stuck shim must not stall the scrape.
      auto s = task->stats(std::chrono::seconds(2));
      if (s.ok()) stats.push_back({task->id(), task->ns(), std::move(s).value()});
    }
    write_cgroup_metrics(stats, w);
  }));
}

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kTaskMonitor),
      .id = "cgroups",
      .init = [](plugin::InitContext&) -> errdefs::StatusOr<plugin::Instance> {
        auto monitor = std::make_shared<TaskMonitor>();
        monitor->export_metrics(metrics::Registry::global());
        return plugin::Instance::of(std::move(monitor));
      },
  });
}

}  // namespace ctrd::monitor
