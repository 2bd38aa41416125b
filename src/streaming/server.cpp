#include "streaming/server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <variant>
#include <vector>

#include "log/log.h"
#include "streaming/port_forward.h"
#include "streaming/remote_command.h"
#include "streaming/spdy_session.h"

namespace ctrd::streaming {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRequestHead = 16 * 1024;
constexpr auto kRequestHeadTimeout = std::chrono::seconds(10);

struct HttpRequest {
  std::string method, path;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string rest;                                          // bytes after the head

  std::vector<std::string> values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (k != name) continue;
      std::stringstream list(v);
      for (std::string item; std::getline(list, item, ',');) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) out.push_back(item);
      }
    }
    return out;
  }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Reads the request line and headers, bounded in size and time.
errdefs::StatusOr<HttpRequest> read_request(int fd) {
  std::string data;
  const auto deadline = Clock::now() + kRequestHeadTimeout;
  size_t end;
  while ((end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > kMaxRequestHead) return errdefs::InvalidArgument("request head over 16 KiB");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return errdefs::DeadlineExceeded("no complete request within 10 s");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) return errdefs::Unavailable("the client closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errdefs::Unavailable(std::string("read: ") + std::strerror(errno));
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  HttpRequest request;
  request.rest = data.substr(end + 4);
  std::stringstream head(data.substr(0, end));
  std::string line;
  std::getline(head, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::stringstream request_line(line);
  std::string version;
  request_line >> request.method >> request.path >> version;
  if (request.method.empty() || request.path.empty() || !version.starts_with("HTTP/1."))
    return errdefs::InvalidArgument("not an HTTP/1.x request line");
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return errdefs::InvalidArgument("a malformed header line");
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    request.headers.emplace_back(lower(line.substr(0, colon)), value);
  }
  return request;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void respond(int fd, int code, std::string_view reason, std::string_view body) {
  send_all(fd, "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) +
                   "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                   std::to_string(body.size() + 1) + "\r\nConnection: close\r\n\r\n" + std::string(body) +
                   "\n");
}

// The first of the client's protocols (its order of preference) the server
// speaks; "" when the client named none; nullopt when none is shared.
std::optional<std::string> negotiate(const std::vector<std::string>& client,
                                     const std::vector<std::string>& server) {
  if (client.empty()) return std::string();
  for (const auto& p : client)
    if (std::find(server.begin(), server.end(), p) != server.end()) return p;
  return std::nullopt;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

errdefs::StatusOr<std::unique_ptr<Server>> Server::start(ServerOptions options,
                                                         std::shared_ptr<Runtime> runtime) {
  std::unique_ptr<Server> server(new Server(std::move(options), std::move(runtime)));
  const ServerOptions& o = server->options_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string address = o.address.empty() ? "127.0.0.1" : o.address;
  if (int rc = ::getaddrinfo(address.c_str(), o.port.empty() ? "0" : o.port.c_str(), &hints, &found); rc != 0)
    return errdefs::InvalidArgument("stream server address " + address + ":" + o.port + ": " +
                                    gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  os::UniqueFd listener(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return errdefs::FromErrno(errno, "stream server socket");
  const int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener.get(), found->ai_addr, found->ai_addrlen) != 0)
    return errdefs::FromErrno(errno, "bind the stream server to " + address + ":" + o.port);
  if (::listen(listener.get(), 128) != 0)
    return errdefs::FromErrno(errno, "listen on the stream server socket");
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  const uint16_t port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  const bool v6 = address.find(':') != std::string::npos;
  server->base_url_ = "http://" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
  server->listener_ = std::move(listener);
  server->wake_ = os::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->wake_.valid()) return errdefs::FromErrno(errno, "eventfd for the stream server");
  try {
    server->acceptor_ = std::thread([s = server.get()] { s->accept_loop(); });
  } catch (const std::system_error& e) {
    return errdefs::ResourceExhausted(std::string("start the stream server thread: ") + e.what());
  }
  return server;
}

Server::~Server() { stop(); }

void Server::stop() {
  if (stopping_.exchange(true)) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  std::map<uint64_t, Connection> connections;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, c] : connections_)
      if (c.fd.valid()) ::shutdown(c.fd.get(), SHUT_RDWR);
    connections.swap(connections_);
  }
  for (auto& [id, c] : connections)
    if (c.thread.joinable()) c.thread.join();
}

errdefs::StatusOr<std::string> Server::url_for(Request request) {
  const char* kind = std::holds_alternative<ExecRequest>(request)     ? "exec"
                     : std::holds_alternative<AttachRequest>(request) ? "attach"
                                                                      : "portforward";
  CTRD_ASSIGN_OR_RETURN(std::string token, cache_.insert(std::move(request)));
  return base_url_ + "/" + kind + "/" + token;
}

void Server::reap_finished_locked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!it->second.finished) {
      ++it;
      continue;
    }
    if (it->second.thread.joinable()) it->second.thread.join();
    it = connections_.erase(it);
  }
}

void Server::accept_loop() {
  while (!stopping_) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      log::error("stream server: poll", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0 || stopping_) return;
    if (fds[0].revents == 0) continue;
    os::UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    std::lock_guard lock(mu_);
    reap_finished_locked();
    if (connections_.size() >= options_.max_connections) {
      respond(conn.get(), 503, "Service Unavailable", "too many streaming connections");
      continue;
    }
    const uint64_t id = next_id_++;
    Connection& c = connections_[id];
    const int fd = conn.get();
    c.fd = std::move(conn);
    try {
      c.thread = std::thread([this, id, fd] { serve(id, fd); });
    } catch (const std::system_error&) {
      connections_.erase(id);
    }
  }
}

void Server::serve(uint64_t id, int fd) {
  struct Finish {
    Server* server;
    uint64_t id;
    ~Finish() {
      std::lock_guard lock(server->mu_);
      auto it = server->connections_.find(id);
      if (it != server->connections_.end()) it->second.finished = true;
    }
  } finish{this, id};
  os::UniqueFd conn(::dup(fd));
  if (!conn.valid()) return;
  auto request = read_request(conn.get());
  if (!request.ok()) {
    if (request.status().code() == errdefs::Code::kInvalidArgument)
      respond(conn.get(), 400, "Bad Request", request.status().message());
    return;
  }
  const std::string& path = request->path;
  const size_t slash = path.find('/', 1);
  const std::string kind = slash == std::string::npos ? "" : path.substr(1, slash - 1);
  const std::string token = slash == std::string::npos ? "" : path.substr(slash + 1);
  auto found = cache_.consume(token);
  const bool matches =
      found && ((kind == "exec" && std::holds_alternative<ExecRequest>(*found)) ||
                (kind == "attach" && std::holds_alternative<AttachRequest>(*found)) ||
                (kind == "portforward" && std::holds_alternative<PortForwardRequest>(*found)));
  if (!matches) {
    respond(conn.get(), 404, "Not Found", "no such streaming request: unknown, used or expired token");
    return;
  }
  const auto upgrade = request->values("upgrade");
  if (upgrade.empty() || lower(upgrade.front()) != "spdy/3.1") {
    respond(conn.get(), 400, "Bad Request", "the connection must be upgraded to SPDY/3.1");
    return;
  }
  const bool forward = kind == "portforward";
  const std::vector<std::string> server_protocols =
      forward ? std::vector<std::string>{std::string(kPortForwardProtocol)} : remote_command_protocols();
  const auto client_protocols = request->values("x-stream-protocol-version");
  auto protocol = negotiate(client_protocols, server_protocols);
  if (!protocol) {
    respond(conn.get(), 403, "Forbidden",
            "unable to upgrade: unable to negotiate protocol: client supports [" + join(client_protocols) +
                "], server accepts [" + join(server_protocols) + "]");
    return;
  }
  std::string reply = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
  if (!protocol->empty()) reply += "X-Stream-Protocol-Version: " + *protocol + "\r\n";
  send_all(conn.get(), reply + "\r\n");
  auto session = SpdySession::create(
      std::move(conn), std::move(request->rest),
      SpdySession::Options{.max_buffered = 1 << 20, .idle_timeout = options_.idle_timeout});
  if (!session.ok()) return;
  if (protocol->empty())
    protocol = forward ? std::string(kPortForwardProtocol) : std::string(kRemoteCommandV1);

  errdefs::Status served = errdefs::Status::Ok();
  if (auto* exec = std::get_if<ExecRequest>(&*found)) {
    served = serve_remote_command(
        **session, *protocol,
        RemoteCommandOptions{
            .tty = exec->tty, .stdin = exec->stdin, .stdout = exec->stdout, .stderr = exec->stderr},
        [&] { return runtime_->exec(*exec); });
  } else if (auto* attach = std::get_if<AttachRequest>(&*found)) {
    served = serve_remote_command(
        **session, *protocol,
        RemoteCommandOptions{
            .tty = attach->tty, .stdin = attach->stdin, .stdout = attach->stdout, .stderr = attach->stderr},
        [&] { return runtime_->attach(*attach); });
  } else {
    served = serve_port_forward(**session, std::get<PortForwardRequest>(*found), *runtime_);
  }
  if (!served.ok() && !stopping_)
    log::info("stream server: a streaming session ended early",
              {{"kind", kind}, {"reason", served.message()}});
}

}  // namespace ctrd::streaming
