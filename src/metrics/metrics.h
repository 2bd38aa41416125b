// metrics: Prometheus metrics in the text exposition format (version 0.0.4),
// what operators scrape from containerd's `[metrics] address`.
//
// A Registry owns metric families (counters, gauges, histograms with fixed
// label names) and renders them together with what registered Collectors
// write. Series are created once and then updated with relaxed atomics, so hot
// paths (every gRPC call) resolve their series up front and never take a lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctrd::metrics {

// The exposition format's content type for version 0.0.4.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge, kHistogram, kUntyped };

struct Label {
  std::string name;
  std::string value;
};
using Labels = std::vector<Label>;

// A float as Prometheus writes it: shortest round-trip form, +Inf/-Inf/NaN.
std::string format_value(double v);
// A label value with \, " and newline escaped (the quotes are the caller's).
std::string escape_label_value(std::string_view v);
// HELP text with \ and newline escaped.
std::string escape_help(std::string_view v);

// Appends exposition text. Each family starts with header(); its samples follow.
class Writer {
 public:
  void header(std::string_view name, std::string_view help, Type type);
  // `name` is the sample's full name (e.g. "x_bucket"); `extra` (if named) is
  // appended after `labels`, as histograms do with `le`.
  void sample(std::string_view name, const Labels& labels, double value, const Label* extra = nullptr);
  // A histogram's _bucket (cumulative, with +Inf), _sum and _count lines from
  // per-bucket (non-cumulative) counts; `counts` has one more entry than `bounds`.
  void histogram(std::string_view name, const Labels& labels, const std::vector<double>& bounds,
                 const std::vector<uint64_t>& counts, double sum);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Something that writes its own families at scrape time (process stats,
// per-container cgroup stats, ...). collect() runs on the scraping thread and
// must be safe to call concurrently with the collector's owner.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void collect(Writer& w) = 0;
};

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds` are the buckets' upper bounds, ascending; +Inf is implicit.
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v);
  // Per-bucket counts (last one: above every bound) and the sum, read without
  // a lock: a scrape racing an observe may see one but not the other.
  std::vector<uint64_t> counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// A metric name with its label names; one series per distinct label values.
// with() returns a reference that stays valid as long as the family: callers
// on hot paths keep it.
template <typename Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Label values in label_names() order; a wrong count yields a series with
  // the missing values empty (a programming error, not worth crashing for).
  Metric& with(std::vector<std::string> values);
  void write(Writer& w) const;

 private:
  Labels labels_for(const std::vector<std::string>& values) const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  // Ordered by label values, as Prometheus' own registry renders them.
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> series_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry;

// Unregisters its collector when destroyed.
class CollectorHandle {
 public:
  CollectorHandle() = default;
  CollectorHandle(std::weak_ptr<Registry> registry, const Collector* collector)
      : registry_(std::move(registry)), collector_(collector) {}
  ~CollectorHandle() { reset(); }
  CollectorHandle(CollectorHandle&& o) noexcept
      : registry_(std::move(o.registry_)), collector_(std::exchange(o.collector_, nullptr)) {}
  CollectorHandle& operator=(CollectorHandle&& o) noexcept {
    if (this != &o) {
      reset();
      registry_ = std::move(o.registry_);
      collector_ = std::exchange(o.collector_, nullptr);
    }
    return *this;
  }
  CollectorHandle(const CollectorHandle&) = delete;
  CollectorHandle& operator=(const CollectorHandle&) = delete;
  void reset();

 private:
  std::weak_ptr<Registry> registry_;
  const Collector* collector_ = nullptr;
};

class Registry : public std::enable_shared_from_this<Registry> {
 public:
  static std::shared_ptr<Registry> create() { return std::shared_ptr<Registry>(new Registry()); }
  // The daemon's registry: what `[metrics] address` serves. Modules register
  // their collectors here (e.g. per-container cgroup stats).
  static const std::shared_ptr<Registry>& global();

  // Get-or-create by name: registering the same name twice returns the first
  // family (whose help and labels win).
  CounterFamily& counter(const std::string& name, const std::string& help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> label_names = {});
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names, std::vector<double> bounds);

  // The collector runs at every scrape until the handle is dropped.
  [[nodiscard]] CollectorHandle add_collector(std::shared_ptr<Collector> collector);
  void remove_collector(const Collector* collector);

  // Families sorted by name, then collectors in registration order.
  std::string render() const;

 private:
  Registry() = default;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<CounterFamily>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<GaugeFamily>, std::less<>> gauges_;
  std::map<std::string, std::unique_ptr<HistogramFamily>, std::less<>> histograms_;
  std::vector<std::shared_ptr<Collector>> collectors_;
};

// Adapts a function to the Collector interface.
template <typename F>
class FunctionCollector final : public Collector {
 public:
  explicit FunctionCollector(F f) : f_(std::move(f)) {}
  void collect(Writer& w) override { f_(w); }

 private:
  F f_;
};

template <typename F>
std::shared_ptr<Collector> make_collector(F f) {
  return std::make_shared<FunctionCollector<F>>(std::move(f));
}

}  // namespace ctrd::metrics
