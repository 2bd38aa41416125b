// monitor: io.containerd.monitor.v1.cgroups — the tasks whose resource use
// the daemon reports. The tasks service adds a task when it is created and
// takes it away when it is deleted; metrics (task Stats, the cgroup
// statistics the shim reads) are collected from this set at each scrape of
// the metrics endpoint, as containerd's container_* families. OOM events come
// from the runc shim itself (it watches the cgroup), so none are made here.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "runtime/runtime.h"

namespace ctrd::monitor {

class TaskMonitor : public std::enable_shared_from_this<TaskMonitor> {
 public:
  // Adds the container_* families to `registry`'s scrapes for as long as
  // the monitor lives (it must be owned by a shared_ptr).
  void export_metrics(const std::shared_ptr<metrics::Registry>& registry);

  void monitor(std::shared_ptr<runtime::Task> task);
  void stop(const std::string& ns, const std::string& id);
  // The monitored tasks, by namespace then id.
  std::vector<std::shared_ptr<runtime::Task>> tasks() const;

 private:
  mutable std::mutex mu_;
  metrics::CollectorHandle collector_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<runtime::Task>> tasks_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::monitor
