// streaming/server: the CRI streaming server. The CRI Exec, Attach and
// PortForward calls return a URL here with a one-time token; the kubelet (or
// the API server through it, or crictl) connects, upgrades the HTTP
// connection to SPDY/3.1 with a protocol both sides speak, and the session
// serves the request (streaming/remote_command, streaming/port_forward).
//
// Threading: one accept thread, and one thread per connection while it
// lasts (each runs one poll loop for everything its session moves); stop()
// shuts every connection down and joins them all. At most `max_connections`
// at a time: more are answered 503 at once.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"
#include "streaming/request_cache.h"
#include "streaming/runtime.h"

namespace ctrd::streaming {

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::string port = "0";  // "0": a free port
  std::chrono::milliseconds idle_timeout = std::chrono::hours(4);
  size_t max_connections = 128;
  RequestCache::Options cache;
};

class Server {
 public:
  // Binds and starts accepting; the runtime serves the requests.
  static errdefs::StatusOr<std::unique_ptr<Server>> start(ServerOptions options,
                                                          std::shared_ptr<Runtime> runtime);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Ends every connection and joins every thread. Idempotent.
  void stop();

  // "http://<address>:<port>", with the port actually bound.
  const std::string& base_url() const { return base_url_; }
  // The URL a CRI call returns for `request`.
  errdefs::StatusOr<std::string> url_for(Request request);

 private:
  Server(ServerOptions options, std::shared_ptr<Runtime> runtime)
      : options_(std::move(options)), runtime_(std::move(runtime)), cache_(options_.cache) {}
  void accept_loop();
  void serve(uint64_t id, int fd);
  void reap_finished_locked();

  ServerOptions options_;
  std::shared_ptr<Runtime> runtime_;
  RequestCache cache_;
  std::string base_url_;
  os::UniqueFd listener_;
  os::UniqueFd wake_;  // eventfd: stop() wakes the accept loop
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};

  struct Connection {
    // Open until the connection is reaped, so stop() never shuts down a
    // reused number; the session works on a duplicate of it.
    os::UniqueFd fd;
    std::thread thread;
    bool finished = false;
  };
  std::mutex mu_;
  std::map<uint64_t, Connection> connections_;  // guarded by mu_
  uint64_t next_id_ = 1;                        // guarded by mu_
};

}  // namespace ctrd::streaming
