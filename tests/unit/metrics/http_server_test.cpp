#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "metrics/http_server.h"
#include "os/unique_fd.h"

namespace ctrd::metrics {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

os::UniqueFd connect_to(uint16_t port) {
  os::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

// Everything the server sends until it closes, bounded by `timeout`.
std::string read_all(int fd, std::chrono::milliseconds timeout = 10s) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return out + "<timeout>";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
}

std::string request(uint16_t port, const std::string& raw) {
  os::UniqueFd fd = connect_to(port);
  if (!fd.valid()) return "<connect failed>";
  if (!send_all(fd.get(), raw)) return "<send failed>";
  return read_all(fd.get());
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServer::Options options = {}) {
    std::map<std::string, HttpServer::Page> pages;
    pages["/v1/metrics"] = {"text/plain; version=0.0.4", [] { return std::string("up 1\n"); }};
    auto s = HttpServer::start("127.0.0.1:0", std::move(pages), options);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    server_ = std::move(s).value();
    ASSERT_NE(server_->port(), 0);
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesMetricsOnGet) {
  start();
  const std::string resp = request(server_->port(), "GET /v1/metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 200 OK\r\n")) << resp;
  EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << resp;
  EXPECT_NE(resp.find("Connection: close\r\n"), std::string::npos) << resp;
  EXPECT_NE(resp.find("Content-Length: 5\r\n"), std::string::npos) << resp;
  EXPECT_TRUE(resp.ends_with("\r\n\r\nup 1\n")) << resp;
}

TEST_F(HttpServerTest, IgnoresTheQueryString) {
  start();
  EXPECT_TRUE(
      request(server_->port(), "GET /v1/metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  start();
  EXPECT_TRUE(
      request(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found"));
}

TEST_F(HttpServerTest, OtherMethodsAre405) {
  start();
  for (const char* method : {"POST", "HEAD", "PUT", "DELETE"}) {
    const std::string resp = request(server_->port(), std::string(method) + " /v1/metrics HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(resp.starts_with("HTTP/1.1 405 Method Not Allowed")) << method << ": " << resp;
    EXPECT_NE(resp.find("Allow: GET\r\n"), std::string::npos) << resp;
  }
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  start();
  EXPECT_TRUE(request(server_->port(), "garbage\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request"));
  EXPECT_TRUE(
      request(server_->port(), "GET /v1/metrics SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request"));
}

TEST_F(HttpServerTest, OversizedRequestIs400AndClosed) {
  start({.max_request_bytes = 8 << 10});
  const std::string huge = "GET /v1/metrics HTTP/1.1\r\nX-Pad: " + std::string(16 << 10, 'a');
  const std::string resp = request(server_->port(), huge);
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 400 Bad Request")) << resp.substr(0, 200);
  EXPECT_EQ(resp.find("<timeout>"), std::string::npos);
}

TEST_F(HttpServerTest, SilentClientDoesNotDelayOthers) {
  start({.deadline = 5s});
  os::UniqueFd silent = connect_to(server_->port());
  ASSERT_TRUE(silent.valid());
  ASSERT_TRUE(send_all(silent.get(), "GET /v1/me"));  // and never finishes
  const auto t0 = Clock::now();
  EXPECT_TRUE(request(server_->port(), "GET /v1/metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAtItsDeadline) {
  start({.deadline = 200ms});
  os::UniqueFd idle = connect_to(server_->port());
  ASSERT_TRUE(idle.valid());
  const auto t0 = Clock::now();
  EXPECT_EQ(read_all(idle.get(), 5s), "");  // closed without a response, well before the bound
  EXPECT_GE(Clock::now() - t0, 150ms);
  EXPECT_LT(Clock::now() - t0, 4s);
}

TEST_F(HttpServerTest, ManyConcurrentClientsAreAllServed) {
  start({.max_connections = 256});
  std::vector<os::UniqueFd> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(connect_to(server_->port()));
    ASSERT_TRUE(clients.back().valid()) << i;
  }
  for (auto& c : clients) ASSERT_TRUE(send_all(c.get(), "GET /v1/metrics HTTP/1.1\r\n\r\n"));
  int ok = 0;
  for (auto& c : clients) ok += read_all(c.get()).starts_with("HTTP/1.1 200 OK") ? 1 : 0;
  EXPECT_EQ(ok, 200);
}

TEST_F(HttpServerTest, ConnectionsOverTheCapAreRefused) {
  start({.max_connections = 4});
  std::vector<os::UniqueFd> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(connect_to(server_->port()));
    ASSERT_TRUE(held.back().valid());
  }
  // The server has accepted the four once it answers a request on one of them.
  ASSERT_TRUE(send_all(held[0].get(), "GET /v1/metrics HTTP/1.1\r\n\r\n"));
  os::UniqueFd extra = connect_to(server_->port());
  ASSERT_TRUE(extra.valid());
  EXPECT_TRUE(read_all(extra.get()).starts_with("HTTP/1.1 503")) << "fifth connection";
  EXPECT_TRUE(read_all(held[0].get()).starts_with("HTTP/1.1 200 OK"));
  held.clear();
  // Slots free up once clients go away (the server notices their close).
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    served = request(server_->port(), "GET /v1/metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK");
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, StopClosesOpenConnections) {
  start();
  os::UniqueFd idle = connect_to(server_->port());
  ASSERT_TRUE(idle.valid());
  server_->stop();
  EXPECT_EQ(read_all(idle.get(), 5s), "");
  EXPECT_FALSE(connect_to(server_->port()).valid());
}

TEST(HttpServerAddress, RejectsBadAddresses) {
  EXPECT_FALSE(HttpServer::start("127.0.0.1", {}).ok());
  EXPECT_FALSE(HttpServer::start("127.0.0.1:http", {}).ok());
  EXPECT_FALSE(HttpServer::start("256.0.0.1:0", {}).ok());
}

TEST(HttpServerAddress, AddressInUseIsAnError) {
  auto first = HttpServer::start("127.0.0.1:0", {});
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::start("127.0.0.1:" + std::to_string((*first)->port()), {});
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace ctrd::metrics
