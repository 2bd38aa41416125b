// monitor/cgroup_metrics: the container_* Prometheus families containerd's
// cgroups monitor exports (metrics/cgroups/v1 and v2), written from the
// statistics each task's shim returns (io.containerd.cgroups.v1.Metrics or
// io.containerd.cgroups.v2.Metrics), labelled container_id and namespace.
#pragma once

#include <google/protobuf/any.pb.h>

#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace ctrd::monitor {

struct TaskStats {
  std::string id;
  std::string ns;
  google::protobuf::Any stats;
};

// Every family once, with a sample per task that has it; tasks whose
// statistics are of an unknown type are left out.
void write_cgroup_metrics(const std::vector<TaskStats>& tasks, metrics::Writer& w);

}  // namespace ctrd::monitor
