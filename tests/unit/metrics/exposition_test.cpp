#include <gtest/gtest.h>

#include "metrics/metrics.h"
#include "metrics/process.h"

namespace ctrd::metrics {
namespace {

TEST(FormatValue, WritesShortestFormAndSpecials) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.005), "0.005");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
}

TEST(Escape, LabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  // HELP keeps double quotes as they are.
  EXPECT_EQ(escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

TEST(Registry, RendersGoldenText) {
  auto r = Registry::create();
  auto& requests = r->counter("http_requests_total", "Requests \"served\".\nPer path.", {"code", "path"});
  requests.with({"200", "/b"}).inc(2);
  requests.with({"200", "/a\"x\\\n"}).inc();
  r->gauge("temperature_celsius", "Current temperature.").with({}).set(-1.5);
  auto& latency = r->histogram("latency_seconds", "Latency.", {"op"}, {1, 0.5});  // sorted on registration
  auto& get = latency.with({"get"});
  get.observe(0.25);
  get.observe(0.5);  // on a bound: counts in that bucket
  get.observe(0.75);
  get.observe(20);
  r->counter("unused_total", "Never touched.", {"x"});  // no series: not rendered

  const std::string want =
      "# HELP http_requests_total Requests \"served\".\\nPer path.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{code=\"200\",path=\"/a\\\"x\\\\\\n\"} 1\n"
      "http_requests_total{code=\"200\",path=\"/b\"} 2\n"
      "# HELP latency_seconds Latency.\n"
      "# TYPE latency_seconds histogram\n"
      "latency_seconds_bucket{op=\"get\",le=\"0.5\"} 2\n"
      "latency_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
      "latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
      "latency_seconds_sum{op=\"get\"} 21.5\n"
      "latency_seconds_count{op=\"get\"} 4\n"
      "# HELP temperature_celsius Current temperature.\n"
      "# TYPE temperature_celsius gauge\n"
      "temperature_celsius -1.5\n";
  EXPECT_EQ(r->render(), want);
}

TEST(Registry, SameNameReturnsSameFamily) {
  auto r = Registry::create();
  auto& a = r->counter("x_total", "X.", {"l"});
  auto& b = r->counter("x_total", "other help", {"other"});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.with({"v"}), &b.with({"v"}));
}

TEST(Registry, CollectorsRunUntilTheirHandleIsDropped) {
  auto r = Registry::create();
  int calls = 0;
  {
    CollectorHandle h = r->add_collector(make_collector([&](Writer& w) {
      ++calls;
      w.header("container_pids_current", "Pids.", Type::kGauge);
      w.sample("container_pids_current", {{"container_id", "c1"}, {"namespace", "default"}}, 3);
    }));
    EXPECT_EQ(r->render(),
              "# HELP container_pids_current Pids.\n# TYPE container_pids_current gauge\n"
              "container_pids_current{container_id=\"c1\",namespace=\"default\"} 3\n");
  }
  EXPECT_EQ(r->render(), "");
  EXPECT_EQ(calls, 1);
}

TEST(Writer, HistogramFromCountsIsCumulative) {
  Writer w;
  w.histogram("h", {}, {1, 2}, {1, 0, 2}, 7.5);
  EXPECT_EQ(w.text(),
            "h_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 3\nh_sum 7.5\nh_count 3\n");
}

TEST(ProcessCollector, ReportsTheStandardSeries) {
  Writer w;
  process_collector()->collect(w);
  const std::string& text = w.text();
  for (const char* name :
       {"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total",
        "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    EXPECT_NE(text.find(std::string("\n") + name + " "), std::string::npos) << name << " in\n" << text;
  }
  // Resident memory of a running test binary is well above zero.
  const auto pos = text.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_GT(std::stod(text.substr(pos + sizeof("\nprocess_resident_memory_bytes ") - 1)), 1 << 20);
}

}  // namespace
}  // namespace ctrd::metrics
