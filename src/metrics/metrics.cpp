#include "metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

namespace ctrd::metrics {

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string_view type_name(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
    case Type::kUntyped:
      break;
  }
  return "untyped";
}

}  // namespace

void Writer::header(std::string_view name, std::string_view help, Type type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_name(type);
  out_ += '\n';
}

void Writer::sample(std::string_view name, const Labels& labels, double value, const Label* extra) {
  out_ += name;
  if (!labels.empty() || extra != nullptr) {
    out_ += '{';
    bool first = true;
    auto add = [&](const Label& l) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.name;
      out_ += "=\"";
      out_ += escape_label_value(l.value);
      out_ += '"';
    };
    for (const auto& l : labels) add(l);
    if (extra != nullptr) add(*extra);
    out_ += '}';
  }
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void Writer::histogram(std::string_view name, const Labels& labels, const std::vector<double>& bounds,
                       const std::vector<uint64_t>& counts, double sum) {
  const std::string base(name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    Label le{"le", i < bounds.size() ? format_value(bounds[i]) : "+Inf"};
    sample(base + "_bucket", labels, static_cast<double>(cumulative), &le);
  }
  sample(base + "_sum", labels, sum);
  sample(base + "_count", labels, static_cast<double>(cumulative));
}

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // Buckets are "less than or equal": an observation on a bound counts in it.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

template <typename Metric>
Labels Family<Metric>::labels_for(const std::vector<std::string>& values) const {
  Labels labels;
  labels.reserve(label_names_.size());
  for (size_t i = 0; i < label_names_.size(); ++i) {
    labels.push_back({label_names_[i], i < values.size() ? values[i] : std::string()});
  }
  return labels;
}

template <typename Metric>
Metric& Family<Metric>::with(std::vector<std::string> values) {
  values.resize(label_names_.size());
  std::lock_guard lock(mu_);
  auto& slot = series_[std::move(values)];
  if (!slot) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      slot = std::make_unique<Histogram>(bounds_);
    } else {
      slot = std::make_unique<Metric>();
    }
  }
  return *slot;
}

template <typename Metric>
void Family<Metric>::write(Writer& w) const {
  std::lock_guard lock(mu_);
  if (series_.empty()) return;  // an empty family is noise to promtool
  if constexpr (std::is_same_v<Metric, Counter>) {
    w.header(name_, help_, Type::kCounter);
    for (const auto& [values, m] : series_)
      w.sample(name_, labels_for(values), static_cast<double>(m->value()));
  } else if constexpr (std::is_same_v<Metric, Gauge>) {
    w.header(name_, help_, Type::kGauge);
    for (const auto& [values, m] : series_) w.sample(name_, labels_for(values), m->value());
  } else {
    w.header(name_, help_, Type::kHistogram);
    for (const auto& [values, m] : series_) {
      w.histogram(name_, labels_for(values), bounds_, m->counts(), m->sum());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void CollectorHandle::reset() {
  if (collector_ == nullptr) return;
  if (auto r = registry_.lock()) r->remove_collector(collector_);
  collector_ = nullptr;
  registry_.reset();
}

const std::shared_ptr<Registry>& Registry::global() {
  static const std::shared_ptr<Registry> registry = create();
  return registry;
}

namespace {

template <typename F>
F& get_or_create(std::map<std::string, std::unique_ptr<F>, std::less<>>& families, const std::string& name,
                 const std::string& help, std::vector<std::string> label_names,
                 std::vector<double> bounds = {}) {
  auto& slot = families[name];
  if (!slot) slot = std::make_unique<F>(name, help, std::move(label_names), std::move(bounds));
  return *slot;
}

}  // namespace

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return get_or_create(counters_, name, help, std::move(label_names));
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return get_or_create(gauges_, name, help, std::move(label_names));
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> label_names, std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard lock(mu_);
  return get_or_create(histograms_, name, help, std::move(label_names), std::move(bounds));
}

CollectorHandle Registry::add_collector(std::shared_ptr<Collector> collector) {
  const Collector* raw = collector.get();
  {
    std::lock_guard lock(mu_);
    collectors_.push_back(std::move(collector));
  }
  return CollectorHandle(weak_from_this(), raw);
}

void Registry::remove_collector(const Collector* collector) {
  std::lock_guard lock(mu_);
  std::erase_if(collectors_, [&](const auto& c) { return c.get() == collector; });
}

std::string Registry::render() const {
  // Families are never removed, so their pointers outlive the lock; collectors
  // are copied so a slow collect() does not block registration.
  std::vector<std::pair<std::string_view, std::function<void(Writer&)>>> families;
  std::vector<std::shared_ptr<Collector>> collectors;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, f] : counters_)
      families.emplace_back(name, [p = f.get()](Writer& w) { p->write(w); });
    for (const auto& [name, f] : gauges_)
      families.emplace_back(name, [p = f.get()](Writer& w) { p->write(w); });
    for (const auto& [name, f] : histograms_) {
      families.emplace_back(name, [p = f.get()](Writer& w) { p->write(w); });
    }
    collectors = collectors_;
  }
  std::stable_sort(families.begin(), families.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Writer w;
  for (const auto& [name, write] : families) write(w);
  for (const auto& c : collectors) c->collect(w);
  return w.take();
}

}  // namespace ctrd::metrics
