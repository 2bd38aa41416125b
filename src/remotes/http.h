// remotes/http: one HTTP request to a registry, on Debian's libcurl.
//
// libcurl is a well-kept C library that already handles what a registry
// client must get right and ctrd should not reimplement: TLS (OpenSSL, with
// the system's CAs plus per-host CAs and client certificates), redirects to
// blob storage (bounded; an Authorization header is not carried to another
// host), HTTP/1.1 and HTTP/2, and the http_proxy/https_proxy/no_proxy
// environment. Handles are owned by unique_ptrs with curl's deleters.
//
// Bodies are streamed to a sink as they arrive, never buffered here; a
// transfer that delivers no byte for the stall timeout is DeadlineExceeded.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::remotes {

struct TransferLimits {
  // No byte received for this long: DeadlineExceeded (curl counts whole seconds).
  std::chrono::seconds stall_timeout{30};
  std::chrono::seconds connect_timeout{30};
  long max_redirects = 10;
};

struct TlsSettings {
  bool skip_verify = false;
  std::vector<std::string> ca_files;  // added to the system's CAs
  std::string client_cert;            // empty: none
  std::string client_key;             // empty: in client_cert
};

struct HttpRequest {
  std::string method = "GET";  // GET or HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
};

struct HttpResponse {
  long status = 0;
  std::string url;  // where the final answer came from, after redirects
  // The final response's headers, names lowercased; a repeated header keeps its last value.
  std::map<std::string, std::string> headers;
  std::vector<std::string> www_authenticate;  // every WWW-Authenticate value
  std::string error_body;                     // start of a non-2xx body, for messages

  std::string header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool success() const { return status >= 200 && status < 300; }
};

// Receives a 2xx body piece by piece; an error stops the transfer and is returned.
using BodySink = std::function<errdefs::Status(const HttpResponse& response, std::string_view data)>;

// Performs `request`, following redirects up to limits.max_redirects. Any
// HTTP status is a response (the caller decides); transport failures are
// Unavailable, a stall is DeadlineExceeded, too many redirects is
// Unavailable naming the limit, and a sink's error is returned as it is.
errdefs::StatusOr<HttpResponse> perform(const HttpRequest& request, const TlsSettings& tls,
                                        const TransferLimits& limits, const BodySink& sink);

// "%XX"-escapes everything but unreserved characters, for query values.
std::string url_escape(std::string_view value);

}  // namespace ctrd::remotes
