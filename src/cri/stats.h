// cri/stats: the resource use the CRI's stats calls report — a task's cgroup
// statistics (the shim's Stats, cgroups v1 or v2 metrics) reduced to what
// ContainerStats carries (cumulative CPU, memory usage, working set, RSS, page
// faults, process count), the CPU rate between two samples, and a pod's
// network counters read from its namespace.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "runtime/runtime.h"

namespace ctrd::cri {

struct CgroupUsage {
  uint64_t cpu_nanos = 0;
  uint64_t memory_usage = 0;
  uint64_t working_set = 0;  // usage less the inactive file cache, as the kubelet counts it
  uint64_t rss = 0;
  uint64_t page_faults = 0;
  uint64_t major_page_faults = 0;
  uint64_t memory_limit = 0;  // zero when unlimited
  uint64_t processes = 0;
};

// io.containerd.cgroups.v1.Metrics or io.containerd.cgroups.v2.Metrics;
// InvalidArgument for another type or a value that does not parse.
errdefs::StatusOr<CgroupUsage> decode_cgroup_metrics(const runtime::Any& metrics);

// The average CPU use between an object's successive samples, in nanocores.
// Thread-safe.
class CpuRates {
 public:
  // Zero for the first sample of `id`.
  uint64_t sample(const std::string& id, std::chrono::system_clock::time_point at, uint64_t cpu_nanos);
  void forget(const std::string& id);

 private:
  struct Sample {
    std::chrono::system_clock::time_point at;
    uint64_t cpu_nanos = 0;
  };
  std::mutex mu_;
  std::map<std::string, Sample> last_;
};

struct InterfaceUsage {
  std::string name;
  uint64_t rx_bytes = 0;
  uint64_t rx_errors = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;
};

// /proc/<pid>/net/dev: the interfaces of the network namespace `pid` is in,
// loopback left out.
errdefs::StatusOr<std::vector<InterfaceUsage>> network_usage(uint32_t pid);

}  // namespace ctrd::cri
