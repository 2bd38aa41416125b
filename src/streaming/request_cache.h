// streaming/request_cache: the CRI Exec, Attach and PortForward requests the
// streaming server has promised to serve, each behind a random token in the
// URL the CRI call returned. A token is good once and for a minute, and only
// so many wait at a time, so a client cannot fill the daemon with them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::streaming {

struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

struct AttachRequest {
  std::string container_id;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

struct PortForwardRequest {
  std::string pod_sandbox_id;
  std::vector<int32_t> ports;  // empty: any port the client asks for
};

using Request = std::variant<ExecRequest, AttachRequest, PortForwardRequest>;

class RequestCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    std::chrono::steady_clock::duration ttl = std::chrono::minutes(1);
    size_t max_outstanding = 1000;
    Clock clock;  // defaults to steady_clock::now
  };

  explicit RequestCache(Options options);
  RequestCache() : RequestCache(Options{}) {}

  // A new token (URL-safe, 8 random bytes) for `request`; ResourceExhausted
  // when max_outstanding unexpired tokens are waiting.
  errdefs::StatusOr<std::string> insert(Request request);

  // The request of a token, removed: a second use, an unknown or an expired
  // token all give nothing.
  std::optional<Request> consume(const std::string& token);

  size_t size() const;

 private:
  struct Entry {
    Request request;
    std::chrono::steady_clock::time_point expires;
  };
  void evict_expired_locked(std::chrono::steady_clock::time_point now);

  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace ctrd::streaming
