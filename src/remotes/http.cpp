#include "remotes/http.h"

// Calls go through function pointers (CurlLibrary): no type-checking macros.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>

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

// libcurl is loaded with the first request rather than linked: linked, its
// thirty-odd libraries would be loaded at every daemon start, and most
// daemons never pull. Debian's libcurl4 provides it.
struct CurlLibrary {
  CURLcode (*global_init)(long flags) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL* handle, CURLoption option, ...) = nullptr;
  CURLcode (*easy_perform)(CURL* handle) = nullptr;
  void (*easy_cleanup)(CURL* handle) = nullptr;
  CURLcode (*easy_getinfo)(CURL* handle, CURLINFO info, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode code) = nullptr;
  curl_slist* (*slist_append)(curl_slist* list, const char* text) = nullptr;
  void (*slist_free_all)(curl_slist* list) = nullptr;
};

template <typename Fn>
bool bind_symbol(void* handle, const char* name, Fn*& out) {
  out = reinterpret_cast<Fn*>(::dlsym(handle, name));
  return out != nullptr;
}

// Loaded once, with curl_global_init (which is not thread-safe) run once
// before any handle; never unloaded.
const StatusOr<const CurlLibrary*>& load_curl() {
  static const StatusOr<const CurlLibrary*> loaded = []() -> StatusOr<const CurlLibrary*> {
    void* handle = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr)
      return errdefs::FailedPrecondition(
          std::string("registry client: cannot load libcurl (Debian package libcurl4): ") + ::dlerror());
    static CurlLibrary lib;
    if (!bind_symbol(handle, "curl_global_init", lib.global_init) ||
        !bind_symbol(handle, "curl_easy_init", lib.easy_init) ||
        !bind_symbol(handle, "curl_easy_setopt", lib.easy_setopt) ||
        !bind_symbol(handle, "curl_easy_perform", lib.easy_perform) ||
        !bind_symbol(handle, "curl_easy_cleanup", lib.easy_cleanup) ||
        !bind_symbol(handle, "curl_easy_getinfo", lib.easy_getinfo) ||
        !bind_symbol(handle, "curl_easy_strerror", lib.easy_strerror) ||
        !bind_symbol(handle, "curl_slist_append", lib.slist_append) ||
        !bind_symbol(handle, "curl_slist_free_all", lib.slist_free_all))
      return errdefs::FailedPrecondition("registry client: libcurl.so.4 lacks a function it needs");
    if (lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return errdefs::Internal("registry client: curl_global_init failed");
    return &lib;
  }();
  return loaded;
}

// Only after load_curl() succeeded.
const CurlLibrary& curl_lib() { return **load_curl(); }

struct EasyDeleter {
  void operator()(CURL* c) const { curl_lib().easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_lib().slist_free_all(l); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

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
  CTRD_RETURN_IF_ERROR(load_curl().status());
  const CurlLibrary& lib = curl_lib();
  EasyHandle curl(lib.easy_init());
  if (!curl) return errdefs::Internal("curl_easy_init failed");
  CURL* c = curl.get();

  Transfer transfer;
  transfer.sink = &sink;
  HeaderList headers;
  for (const auto& h : request.headers) {
    curl_slist* appended = lib.slist_append(headers.get(), h.c_str());
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

  lib.easy_setopt(c, CURLOPT_URL, request.url.c_str());
  lib.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  lib.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  lib.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  lib.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  lib.easy_setopt(c, CURLOPT_MAXREDIRS, limits.max_redirects);
  lib.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(limits.connect_timeout.count()));
  // Below 1 byte/s for stall_timeout seconds: the transfer has stalled.
  lib.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  lib.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(limits.stall_timeout.count()));
  lib.easy_setopt(c, CURLOPT_USERAGENT, "ctrd (containerd/1.6 compatible)");
  lib.easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (request.method == "HEAD") lib.easy_setopt(c, CURLOPT_NOBODY, 1L);
  lib.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  lib.easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  lib.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  lib.easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  if (tls.skip_verify) {
    lib.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    lib.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_blob blob{};
  if (!ca_blob.empty()) {
    blob.data = ca_blob.data();
    blob.len = ca_blob.size();
    blob.flags = CURL_BLOB_NOCOPY;
    lib.easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!tls.client_cert.empty()) {
    lib.easy_setopt(c, CURLOPT_SSLCERT, tls.client_cert.c_str());
    lib.easy_setopt(c, CURLOPT_SSLKEY, (tls.client_key.empty() ? tls.client_cert : tls.client_key).c_str());
  }

  CURLcode rc = lib.easy_perform(c);
  const std::string what = request.method + " " + request.url;
  if (!transfer.sink_error.ok()) return transfer.sink_error;
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_OPERATION_TIMEDOUT:
      return errdefs::DeadlineExceeded(what + ": no data for " +
                                       std::to_string(limits.stall_timeout.count()) + " s (" +
                                       lib.easy_strerror(rc) + ")");
    case CURLE_TOO_MANY_REDIRECTS:
      return errdefs::Unavailable(what + ": more than " + std::to_string(limits.max_redirects) +
                                  " redirects (a redirect loop?)");
    default:
      return errdefs::Unavailable(what + ": " + lib.easy_strerror(rc));
  }
  long status = 0;
  lib.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = status;
  char* effective = nullptr;
  lib.easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  transfer.response.url = effective != nullptr ? effective : request.url;
  return std::move(transfer.response);
}

}  // namespace ctrd::remotes
