// The Prometheus endpoint of a real daemon: `[metrics] address`, scraped over
// plain HTTP as Prometheus does, checked against promtool when installed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "harness.h"

namespace ctrd::testing {
namespace {

using namespace std::chrono_literals;

// The value of one series line ("name{labels} value"), or -1 when absent.
double series_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

std::filesystem::path log_file(const Daemon& d) {
  for (const auto& e : std::filesystem::directory_iterator(d.dir())) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("ctrd-") && name.ends_with(".log")) return e.path();
  }
  return d.dir() / "ctrd-1.log";
}

// Socket inodes of `pid` that are listening TCP sockets (v4 or v6).
std::set<std::string> listening_tcp_inodes(pid_t pid) {
  std::set<std::string> own;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.starts_with("socket:[")) own.insert(target.substr(8, target.size() - 9));
  }
  std::set<std::string> listening;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state == "0A" && own.contains(inode)) listening.insert(inode);  // 0A: TCP_LISTEN
    }
  }
  return listening;
}

constexpr const char* kVersionOk =
    "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Version\","
    "grpc_service=\"containerd.services.version.v1.Version\",grpc_type=\"unary\"}";

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    daemon_ = std::make_unique<Daemon>(
        DaemonOptions{.config = "version = 2\n[metrics]\n  address = \"127.0.0.1:" + std::to_string(port_) +
                                "\"\n  grpc_histogram = true\n"});
    // Metrics start right after the gRPC and ttRPC sockets; the log says when.
    const std::string log = wait_for_content(log_file(*daemon_), {"serving metrics"});
    ASSERT_NE(log.find("serving metrics"), std::string::npos) << log;
  }
  std::string scrape() { return body_of(http_get(port_, "/v1/metrics")); }

  uint16_t port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(MetricsTest, CountsCtrVersionCallsExactly) {
  const std::string before = scrape();
  ASSERT_FALSE(before.empty());
  // Every registered method starts at zero; a missing series would read -1.
  const double start = series_value(before, kVersionOk);
  ASSERT_GE(start, 0) << before;
  for (int i = 0; i < 3; ++i) {
    auto r = daemon_->ctr({"version"});
    ASSERT_EQ(r.exit_code, 0) << r.all();
  }
  const std::string after = scrape();
  EXPECT_EQ(series_value(after, kVersionOk), start + 3) << after;
  EXPECT_GE(series_value(after,
                         "grpc_server_handling_seconds_count{grpc_method=\"Version\","
                         "grpc_service=\"containerd.services.version.v1.Version\",grpc_type=\"unary\"}"),
            3);
}

TEST_F(MetricsTest, ServesProcessAndPluginMetrics) {
  const std::string response = http_get(port_, "/v1/metrics");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response.substr(0, 300);
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string text = body_of(response);
  EXPECT_GT(series_value(text, "process_resident_memory_bytes"), 0) << text;
  EXPECT_GT(series_value(text, "process_open_fds"), 0);
  EXPECT_EQ(
      series_value(text, "ctrd_plugin_status{id=\"version\",status=\"ok\",type=\"io.containerd.grpc.v1\"}"),
      1)
      << text;
  EXPECT_GE(series_value(text, "ctrd_plugin_init_seconds{id=\"version\",type=\"io.containerd.grpc.v1\"}"), 0);
  EXPECT_TRUE(http_get(port_, "/metrics").starts_with("HTTP/1.1 404"));
}

TEST_F(MetricsTest, PromtoolAcceptsTheOutput) {
  if (!std::filesystem::exists("/usr/bin/promtool"))
    GTEST_SKIP() << "promtool (Debian package prometheus) missing";
  ASSERT_EQ(daemon_->ctr({"version"}).exit_code, 0);
  const auto file = daemon_->dir() / "metrics.txt";
  std::ofstream(file) << scrape();
  const auto r = run({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.all();
}

TEST(Metrics, NothingListensWithoutAnAddress) {
  {
    // The probe sees a listener when there is one (here, the test's own).
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    EXPECT_EQ(listening_tcp_inodes(::getpid()).size(), 1u);
    ::close(fd);
  }
  Daemon d;
  EXPECT_TRUE(listening_tcp_inodes(d.process().pid()).empty());
}

}  // namespace
}  // namespace ctrd::testing
