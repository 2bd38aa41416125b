#include "remotes/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace ctrd::remotes {
namespace {

using errdefs::Status;
using errdefs::StatusOr;

// Debian's bundle of the system's trusted CAs (package ca-certificates).
constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr size_t kMaxErrorBody = 4096;

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

// curl_global_init is not thread-safe and must run once before any handle.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse response;
  const BodySink* sink = nullptr;
  Status sink_error;
};

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// Each response of a redirect chain starts with its status line ("HTTP/1.1
// 302 Found", "HTTP/2 200"): only the last one's status and headers are kept,
// and the body callback needs that status before the first byte.
size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    size_t sp = line.find(' ');
    t->response.status =
        sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    t->response.headers.clear();
    t->response.www_authenticate.clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string value = trim(line.substr(colon + 1));
  if (name == "www-authenticate") t->response.www_authenticate.push_back(value);
  t->response.headers[name] = std::move(value);
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view chunk(data, size * n);
  // Headers are complete when the body starts, so the status is the final one.
  if (!t->response.success()) {
    size_t room = kMaxErrorBody - std::min(kMaxErrorBody, t->response.error_body.size());
    t->response.error_body.append(chunk.substr(0, room));
    return chunk.size();
  }
  if (t->sink != nullptr && *t->sink) {
    Status s = (*t->sink)(t->response, chunk);
    if (!s.ok()) {
      t->sink_error = std::move(s);
      return CURL_WRITEFUNC_ERROR;
    }
  }
  return chunk.size();
}

StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errdefs::NotFound("cannot read CA file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string url_escape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

StatusOr<HttpResponse> perform(const HttpRequest& request, const TlsSettings& tls,
                               const TransferLimits& limits, const BodySink& sink) {
  init_curl_once();
  EasyHandle curl(curl_easy_init());
  if (!curl) return errdefs::Internal("curl_easy_init failed");
  CURL* c = curl.get();

  Transfer transfer;
  transfer.sink = &sink;
  HeaderList headers;
  for (const auto& h : request.headers) {
    curl_slist* appended = curl_slist_append(headers.get(), h.c_str());
    if (appended == nullptr) return errdefs::Internal("curl_slist_append failed");
    (void)headers.release();
    headers.reset(appended);
  }

  // A CA blob is the system bundle plus the host's own CAs: containerd adds
  // configured CAs to the system pool rather than replacing it.
  std::string ca_blob;
  if (!tls.ca_files.empty()) {
    if (auto system = read_file(kSystemCaBundle); system.ok()) ca_blob = *system + "\n";
    for (const auto& f : tls.ca_files) {
      CTRD_ASSIGN_OR_RETURN(std::string pem, read_file(f));
      ca_blob += pem + "\n";
    }
  }

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, limits.max_redirects);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(limits.connect_timeout.count()));
  // Below 1 byte/s for stall_timeout seconds: the transfer has stalled.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(limits.stall_timeout.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ctrd (containerd/1.6 compatible)");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (request.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  if (tls.skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_blob blob{};
  if (!ca_blob.empty()) {
    blob.data = ca_blob.data();
    blob.len = ca_blob.size();
    blob.flags = CURL_BLOB_NOCOPY;
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!tls.client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, tls.client_cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, (tls.client_key.empty() ? tls.client_cert : tls.client_key).c_str());
  }

  CURLcode rc = curl_easy_perform(c);
  const std::string what = request.method + " " + request.url;
  if (!transfer.sink_error.ok()) return transfer.sink_error;
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_OPERATION_TIMEDOUT:
      return errdefs::DeadlineExceeded(what + ": no data for " +
                                       std::to_string(limits.stall_timeout.count()) + " s (" +
                                       curl_easy_strerror(rc) + ")");
    case CURLE_TOO_MANY_REDIRECTS:
      return errdefs::Unavailable(what + ": more than " + std::to_string(limits.max_redirects) +
                                  " redirects (a redirect loop?)");
    default:
      return errdefs::Unavailable(what + ": " + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = status;
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  transfer.response.url = effective != nullptr ? effective : request.url;
  return std::move(transfer.response);
}

}  // namespace ctrd::remotes
