#include "cri/stats.h"

#include <github.com/containerd/cgroups/stats/v1/metrics.pb.h>
#include <github.com/containerd/cgroups/v2/stats/metrics.pb.h>

#include <fstream>
#include <sstream>

namespace ctrd::cri {
namespace {

uint64_t less_or_zero(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// cgroup v1 reports "no limit" as the largest page-aligned int64.
constexpr uint64_t kUnlimited = 0x7FFFFFFFFFFFF000ULL;

}  // namespace

errdefs::StatusOr<CgroupUsage> decode_cgroup_metrics(const runtime::Any& metrics) {
  CgroupUsage out;
  const std::string& type = metrics.type_url();
  if (type.ends_with("io.containerd.cgroups.v1.Metrics")) {
    io::containerd::cgroups::v1::Metrics m;
    if (!m.ParseFromString(metrics.value()))
      return errdefs::InvalidArgument("cgroup v1 metrics do not parse");
    out.cpu_nanos = m.cpu().usage().total();
    const auto& mem = m.memory();
    out.memory_usage = mem.usage().usage();
    out.working_set = less_or_zero(out.memory_usage, mem.total_inactive_file());
    out.rss = mem.total_rss();
    out.page_faults = mem.total_pg_fault();
    out.major_page_faults = mem.total_pg_maj_fault();
    out.memory_limit = mem.usage().limit() >= kUnlimited ? 0 : mem.usage().limit();
    out.processes = m.pids().current();
    return out;
  }
  if (type.ends_with("io.containerd.cgroups.v2.Metrics")) {
    io::containerd::cgroups::v2::Metrics m;
    if (!m.ParseFromString(metrics.value()))
      return errdefs::InvalidArgument("cgroup v2 metrics do not parse");
    out.cpu_nanos = m.cpu().usage_usec() * 1000;
    const auto& mem = m.memory();
    out.memory_usage = mem.usage();
    out.working_set = less_or_zero(out.memory_usage, mem.inactive_file());
    out.rss = mem.anon();
    out.page_faults = mem.pgfault();
    out.major_page_faults = mem.pgmajfault();
    out.memory_limit = mem.usage_limit() >= kUnlimited ? 0 : mem.usage_limit();
    out.processes = m.pids().current();
    return out;
  }
  return errdefs::InvalidArgument("unknown task metrics type " + errdefs::quoted(type));
}

uint64_t CpuRates::sample(const std::string& id, std::chrono::system_clock::time_point at,
                          uint64_t cpu_nanos) {
  std::lock_guard lock(mu_);
  auto [it, first] = last_.try_emplace(id, Sample{at, cpu_nanos});
  if (first) return 0;
  const Sample previous = it->second;
  it->second = Sample{at, cpu_nanos};
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(at - previous.at).count();
  if (elapsed <= 0 || cpu_nanos < previous.cpu_nanos) return 0;
  // Nanoseconds of CPU per second of wall time, in nanocores.
  return static_cast<uint64_t>(static_cast<double>(cpu_nanos - previous.cpu_nanos) * 1e9 /
                               static_cast<double>(elapsed));
}

void CpuRates::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  last_.erase(id);
}

errdefs::StatusOr<std::vector<InterfaceUsage>> network_usage(uint32_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/net/dev";
  std::ifstream in(path);
  if (!in) return errdefs::NotFound("cannot read " + path);
  std::vector<InterfaceUsage> out;
  std::string line;
  // Two header lines, then "  name: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes
  // packets errs ..."
  for (int i = 0; i < 2 && std::getline(in, line); ++i) {
  }
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    InterfaceUsage usage;
    std::istringstream name(line.substr(0, colon));
    name >> usage.name;
    if (usage.name == "lo") continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v[11] = {};
    for (auto& x : v) fields >> x;
    usage.rx_bytes = v[0];
    usage.rx_errors = v[2];
    usage.tx_bytes = v[8];
    usage.tx_errors = v[10];
    out.push_back(usage);
  }
  return out;
}

}  // namespace ctrd::cri
