// metrics/http_server: the minimal HTTP/1.1 server behind `[metrics] address`.
//
// One thread runs an epoll loop over non-blocking sockets, so a slow or
// malformed client can hold neither the loop nor the daemon: requests are
// capped in size (400 and close), every connection has a deadline from its
// accept, at most `max_connections` are open at once (more are refused with
// 503), and each response is sent with `Connection: close`. Only GET is
// served (405 otherwise); unknown paths get 404.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"

namespace ctrd::metrics {

class HttpServer {
 public:
  struct Page {
    std::string content_type;
    std::function<std::string()> body;  // runs on the server thread per request
  };

  struct Options {
    size_t max_request_bytes = 8 << 10;
    std::chrono::milliseconds deadline{5000};
    size_t max_connections = 64;
  };

  // Binds `address` ("host:port", "[v6]:port" or ":port" for every interface;
  // port 0 picks a free one) and starts serving `pages` by path.
  static errdefs::StatusOr<std::unique_ptr<HttpServer>> start(const std::string& address,
                                                              std::map<std::string, Page> pages,
                                                              Options options);
  static errdefs::StatusOr<std::unique_ptr<HttpServer>> start(const std::string& address,
                                                              std::map<std::string, Page> pages) {
    return start(address, std::move(pages), Options{});
  }
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (useful after binding port 0).
  uint16_t port() const { return port_; }
  // Closes the listener and every connection; idempotent.
  void stop();

 private:
  struct Connection;
  HttpServer(os::UniqueFd listener, os::UniqueFd epoll, os::UniqueFd wake, uint16_t port,
             std::map<std::string, Page> pages, Options options);
  void run();
  void accept_all();
  // Reads what is available; false when the connection is done with.
  bool on_readable(Connection& c);
  bool flush(Connection& c);
  void respond(Connection& c, std::string_view request_head);

  os::UniqueFd listener_;
  os::UniqueFd epoll_;
  os::UniqueFd wake_;  // eventfd: stop() wakes the loop through it
  uint16_t port_ = 0;
  std::map<std::string, Page> pages_;
  Options options_;
  std::map<int, std::unique_ptr<Connection>> connections_;
  std::thread thread_;
};

}  // namespace ctrd::metrics
