#include "monitor/cgroup_metrics.h"

#include <github.com/containerd/cgroups/stats/v1/metrics.pb.h>
#include <github.com/containerd/cgroups/v2/stats/metrics.pb.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <variant>

namespace ctrd::monitor {
namespace {

namespace v1 = io::containerd::cgroups::v1;
namespace v2 = io::containerd::cgroups::v2;
using google::protobuf::Message;

struct Sample {
  metrics::Labels labels;  // beyond container_id and namespace
  double value = 0;
};

// One family's samples across tasks, in the order families are first met.
class Families {
 public:
  void add(const std::string& name, const std::string& help, const TaskStats& task, Sample sample) {
    auto [it, inserted] = index_.try_emplace(name, order_.size());
    if (inserted) order_.push_back({name, help, {}});
    metrics::Labels labels{{"container_id", task.id}, {"namespace", task.ns}};
    labels.insert(labels.end(), sample.labels.begin(), sample.labels.end());
    order_[it->second].samples.push_back({std::move(labels), sample.value});
  }
  void write(metrics::Writer& w) const {
    for (const auto& f : order_) {
      w.header(f.name, f.help, metrics::Type::kGauge);
      for (const auto& s : f.samples) w.sample(f.name, s.labels, s.value);
    }
  }

 private:
  struct Family {
    std::string name;
    std::string help;
    std::vector<Sample> samples;
  };
  std::map<std::string, size_t> index_;
  std::vector<Family> order_;
};

// containerd's metric names for cgroup v1 memory.stat fields whose proto
// names spell them differently.
std::string v1_memory_name(std::string field) {
  static const std::pair<std::string_view, std::string_view> kRenames[] = {
      {"pg_pg_in", "pgpgin"},
      {"pg_pg_out", "pgpgout"},
      {"pg_maj_fault", "pgmajfault"},
      {"pg_fault", "pgfault"},
      {"hierarchical_swap_limit", "hierarchical_memsw_limit"},
      {"kernel_tcp", "kerneltcp"}};
  for (const auto& [from, to] : kRenames) {
    if (auto pos = field.find(from); pos != std::string::npos) field.replace(pos, from.size(), to);
  }
  return field;
}

// Each uint64 field of `m` as "<prefix><name(field)><suffix(field)>".
void scalar_fields(const Message& m, const TaskStats& task, Families& out, const std::string& prefix,
                   const std::function<std::string(const std::string&)>& name,
                   const std::function<std::string(const std::string&)>& suffix) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->is_repeated() || f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_UINT64) continue;
    const std::string metric = prefix + name(f->name()) + suffix(f->name());
    out.add(metric, "The " + name(f->name()) + " amount", task,
            {{}, static_cast<double>(r->GetUInt64(m, f))});
  }
}

void add_v1(const v1::Metrics& m, const TaskStats& task, Families& out) {
  if (m.has_cpu()) {
    const auto& u = m.cpu().usage();
    out.add("container_cpu_total_nanoseconds", "The total cpu time", task, {{}, double(u.total())});
    out.add("container_cpu_kernel_nanoseconds", "The total kernel cpu time", task, {{}, double(u.kernel())});
    out.add("container_cpu_user_nanoseconds", "The total user cpu time", task, {{}, double(u.user())});
    for (int i = 0; i < u.per_cpu_size(); ++i) {
      out.add("container_per_cpu_nanoseconds", "The total cpu time per cpu", task,
              {{{"cpu", std::to_string(i)}}, double(u.per_cpu(i))});
    }
    const auto& t = m.cpu().throttling();
    out.add("container_cpu_throttle_periods_total", "The total cpu throttle periods", task,
            {{}, double(t.periods())});
    out.add("container_cpu_throttled_periods_total", "The total cpu throttled periods", task,
            {{}, double(t.throttled_periods())});
    out.add("container_cpu_throttled_time_nanoseconds", "The total cpu throttled time", task,
            {{}, double(t.throttled_time())});
  }
  if (m.has_memory()) {
    const auto& mem = m.memory();
    scalar_fields(mem, task, out, "container_memory_", v1_memory_name,
                  [](const std::string&) { return "_bytes"; });
    const std::pair<const char*, const v1::MemoryEntry*> entries[] = {{"usage", &mem.usage()},
                                                                      {"swap", &mem.swap()},
                                                                      {"kernel", &mem.kernel()},
                                                                      {"kerneltcp", &mem.kernel_tcp()}};
    for (const auto& [name, e] : entries) {
      const std::string base = std::string("container_memory_") + name;
      out.add(base + "_failcnt_total", std::string("The ") + name + " failcnt", task,
              {{}, double(e->failcnt())});
      out.add(base + "_limit_bytes", std::string("The ") + name + " limit", task, {{}, double(e->limit())});
      out.add(base + "_max_bytes", std::string("The ") + name + " maximum usage", task,
              {{}, double(e->max())});
      out.add(base + "_usage_bytes", std::string("The ") + name + " usage", task, {{}, double(e->usage())});
    }
  }
  if (m.has_pids()) {
    out.add("container_pids_limit", "The limit to the number of pids allowed", task,
            {{}, double(m.pids().limit())});
    out.add("container_pids_current", "The current number of pids", task, {{}, double(m.pids().current())});
  }
}

void add_v2(const v2::Metrics& m, const TaskStats& task, Families& out) {
  auto same = [](const std::string& n) { return n; };
  if (m.has_cpu()) {
    scalar_fields(m.cpu(), task, out, "container_cpu_", same, [](const std::string& n) {
      return n.ends_with("_usec") ? std::string("_microseconds") : std::string("_total");
    });
  }
  if (m.has_memory()) {
    scalar_fields(m.memory(), task, out, "container_memory_", same,
                  [](const std::string&) { return "_bytes"; });
  }
  if (m.has_pids()) {
    out.add("container_pids_limit", "The limit to the number of pids allowed", task,
            {{}, double(m.pids().limit())});
    out.add("container_pids_current", "The current number of pids", task, {{}, double(m.pids().current())});
  }
}

// containerd's typeurl names the type bare ("io.containerd.cgroups.v1.Metrics");
// protobuf's Any puts a host before it.
bool type_is(const google::protobuf::Any& any, std::string_view full_name) {
  const std::string& url = any.type_url();
  if (url == full_name) return true;
  return url.size() > full_name.size() && url.ends_with(full_name) &&
         url[url.size() - full_name.size() - 1] == '/';
}

}  // namespace

void write_cgroup_metrics(const std::vector<TaskStats>& tasks, metrics::Writer& w) {
  Families families;
  for (const auto& task : tasks) {
    if (type_is(task.stats, v1::Metrics::descriptor()->full_name())) {
      v1::Metrics m;
      if (m.ParseFromString(task.stats.value())) add_v1(m, task, families);
    } else if (type_is(task.stats, v2::Metrics::descriptor()->full_name())) {
      v2::Metrics m;
      if (m.ParseFromString(task.stats.value())) add_v2(m, task, families);
    }
  }
  families.write(w);
}

}  // namespace ctrd::monitor
