#include "metrics/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "log/log.h"

namespace ctrd::metrics {

namespace {

using Clock = std::chrono::steady_clock;

// After the response, unread request bytes would turn close() into a reset
// that can destroy the response in flight; the socket is drained this long.
constexpr std::chrono::milliseconds kLinger{1000};

struct HostPort {
  std::string host;  // empty: every interface
  std::string port;
};

errdefs::StatusOr<HostPort> split_address(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return errdefs::InvalidArgument("metrics address " + address + ": missing port");
  HostPort hp{address.substr(0, colon), address.substr(colon + 1)};
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (hp.port.empty() ||
      !std::all_of(hp.port.begin(), hp.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return errdefs::InvalidArgument("metrics address " + address + ": invalid port");
  }
  return hp;
}

errdefs::StatusOr<os::UniqueFd> listen_on(const std::string& address) {
  CTRD_ASSIGN_OR_RETURN(HostPort hp, split_address(address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &list);
      rc != 0) {
    return errdefs::InvalidArgument("metrics address " + address + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(list, &::freeaddrinfo);
  int err = EADDRNOTAVAIL;
  // With no host, prefer the IPv6 wildcard: it accepts IPv4 too, as Go's ":port" does.
  std::vector<const addrinfo*> candidates;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) candidates.push_back(ai);
  if (hp.host.empty()) {
    std::stable_partition(candidates.begin(), candidates.end(),
                          [](const addrinfo* ai) { return ai->ai_family == AF_INET6; });
  }
  for (const addrinfo* ai : candidates) {
    os::UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
      err = errno;
      continue;
    }
    return fd;
  }
  return errdefs::FromErrno(err, "listen on metrics address " + address);
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers = {}) {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  out += body;
  return out;
}

std::string plain(std::string_view status) {
  return response(status, "text/plain; charset=utf-8", std::string(status) + "\n");
}

}  // namespace

struct HttpServer::Connection {
  os::UniqueFd fd;
  Clock::time_point deadline;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool responded = false;  // `out` holds the whole response
  bool draining = false;   // response sent, write side shut, discarding input
};

errdefs::StatusOr<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& address,
                                                                 std::map<std::string, Page> pages,
                                                                 Options options) {
  CTRD_ASSIGN_OR_RETURN(os::UniqueFd listener, listen_on(address));
  os::UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return errdefs::FromErrno(errno, "metrics: epoll_create1");
  os::UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return errdefs::FromErrno(errno, "metrics: eventfd");
  for (int fd : {listener.get(), wake.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
      return errdefs::FromErrno(errno, "metrics: epoll_ctl");
  }
  const uint16_t port = local_port(listener.get());
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(listener), std::move(epoll), std::move(wake), port,
                                               std::move(pages), options));
  s->thread_ = std::thread([p = s.get()] { p->run(); });
  return s;
}

HttpServer::HttpServer(os::UniqueFd listener, os::UniqueFd epoll, os::UniqueFd wake, uint16_t port,
                       std::map<std::string, Page> pages, Options options)
    : listener_(std::move(listener)),
      epoll_(std::move(epoll)),
      wake_(std::move(wake)),
      port_(port),
      pages_(std::move(pages)),
      options_(options) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  if (::write(wake_.get(), &one, sizeof one) < 0)
    log::warn("metrics: wake server", {{"error", strerror(errno)}});
  thread_.join();
  connections_.clear();
  listener_.reset();
}

void HttpServer::run() {
  std::vector<epoll_event> events(64);
  for (;;) {
    int timeout_ms = -1;
    const auto now = Clock::now();
    for (const auto& [fd, c] : connections_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(c->deadline - now).count();
      const int ms = static_cast<int>(std::max<int64_t>(0, left));
      timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
    }
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      log::error("metrics: epoll_wait", {{"error", strerror(errno)}});
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) return;
      if (fd == listener_.get()) {
        accept_all();
        continue;
      }
      auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      bool keep = true;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) keep = on_readable(c);
      if (keep && c.responded && !c.draining && (events[i].events & EPOLLOUT)) keep = flush(c);
      if (!keep) connections_.erase(it);  // the UniqueFd closes it, which also leaves the epoll set
    }
    const auto after = Clock::now();
    std::erase_if(connections_, [&](const auto& kv) { return kv.second->deadline <= after; });
  }
}

void HttpServer::accept_all() {
  for (;;) {
    os::UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) log::warn("metrics: accept", {{"error", strerror(errno)}});
      return;
    }
    if (connections_.size() >= options_.max_connections) {
      // Best effort on a fresh socket (its buffer is empty); never wait for it.
      const std::string busy = plain("503 Service Unavailable");
      [[maybe_unused]] auto w = ::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      log::warn("metrics: epoll_ctl", {{"error", strerror(errno)}});
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->deadline = Clock::now() + options_.deadline;
    const int key = fd.get();
    c->fd = std::move(fd);
    connections_[key] = std::move(c);
  }
}

bool HttpServer::on_readable(Connection& c) {
  char buf[4096];
  for (;;) {
    const ssize_t r = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (r == 0) return false;  // peer closed: nothing more to serve or drain
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (c.responded) continue;  // a request body or pipelined junk: ignored
    c.in.append(buf, static_cast<size_t>(r));
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) end = c.in.find("\n\n");
    if (end == std::string::npos && c.in.size() <= options_.max_request_bytes) continue;
    if (end == std::string::npos || end > options_.max_request_bytes) {
      c.out = plain("400 Bad Request");
    } else {
      respond(c, std::string_view(c.in).substr(0, end));
    }
    c.responded = true;
    c.in.clear();
    if (!flush(c)) return false;
  }
}

void HttpServer::respond(Connection& c, std::string_view head) {
  const auto line_end = head.find('\n');
  std::string_view line = head.substr(0, line_end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> parts;
  while (!line.empty()) {
    const auto sp = line.find(' ');
    parts.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  if (parts.size() != 3 || !parts[2].starts_with("HTTP/1.") || parts[1].empty()) {
    c.out = plain("400 Bad Request");
    return;
  }
  if (parts[0] != "GET") {
    c.out = response("405 Method Not Allowed", "text/plain; charset=utf-8", "405 Method Not Allowed\n",
                     "Allow: GET\r\n");
    return;
  }
  const std::string_view path = parts[1].substr(0, parts[1].find('?'));
  auto it = pages_.find(std::string(path));
  if (it == pages_.end()) {
    c.out = plain("404 Not Found");
    return;
  }
  c.out = response("200 OK", it->second.content_type, it->second.body());
}

bool HttpServer::flush(Connection& c) {
  while (c.sent < c.out.size()) {
    const ssize_t w = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.fd = c.fd.get();
      return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0;
    }
    c.sent += static_cast<size_t>(w);
  }
  ::shutdown(c.fd.get(), SHUT_WR);
  c.draining = true;
  c.out.clear();
  c.deadline = std::min(c.deadline, Clock::now() + kLinger);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = c.fd.get();
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0;
}

}  // namespace ctrd::metrics
