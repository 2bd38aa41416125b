#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "executor/worker_pool.h"
#include "log/log.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::ttrpc {
namespace {

// A peer that sends requests but never reads the answers is cut off here
// rather than growing the daemon without bound.
constexpr size_t kMaxPendingOutput = size_t{64} << 20;
// epoll data for the wake-up eventfd; connection and listener ids start at 1.
constexpr uint64_t kWakeId = 0;

std::string errno_text(int err) { return std::strerror(err); }

errdefs::Status set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return errdefs::FromErrno(errno, "ttrpc: fcntl");
  return errdefs::Status::Ok();
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// One response frame into `out` (reused by the caller).
void encode_response_frame(std::string& out, uint32_t stream_id, const Response& response) {
  out.clear();
  const size_t header = begin_frame(out, stream_id, MessageType::kResponse);
  encode_append(response, out);
  finish_frame(out, header);
}

}  // namespace

std::optional<std::string_view> metadata_value(const Metadata& metadata, std::string_view key) {
  for (const auto& [k, v] : metadata)
    if (iequal(k, key)) return std::string_view(v);
  return std::nullopt;
}

// One peer. The I/O thread owns reading and the epoll registration; any
// thread may send (handlers answer from the pool). Shared with running jobs,
// so the descriptor outlives every send that could still use it.
class Connection {
 public:
  Connection(uint64_t id, os::UniqueFd fd, int epoll_fd) : id_(id), fd_(std::move(fd)), epoll_fd_(epoll_fd) {}

  uint64_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  FrameDecoder& decoder() { return decoder_; }
  std::stop_token stop_token() const { return stop_.get_token(); }
  std::atomic<size_t>& in_flight() { return in_flight_; }

  // Queues a whole frame; what the socket does not take now goes out when
  // epoll says it is writable.
  void send(std::string_view frame) {
    std::lock_guard lock(write_mu_);
    if (closed_) return;
    if (out_.empty()) {
      const size_t n = write_some(frame);
      if (closed_) return;
      frame.remove_prefix(n);
      if (frame.empty()) return;
    }
    out_.append(frame);
    if (out_.size() > kMaxPendingOutput) {
      abort_locked("peer does not read its responses");
      return;
    }
    watch_writable_locked(true);
  }

  // On EPOLLOUT.
  void flush() {
    std::lock_guard lock(write_mu_);
    if (closed_) return;
    out_.erase(0, write_some(out_));
    if (out_.empty()) watch_writable_locked(false);
  }

  // The I/O thread's final step: no more sends, handlers told to stop.
  // Returns why the connection broke, if a sender found out first.
  std::string close() {
    std::string reason;
    {
      std::lock_guard lock(write_mu_);
      closed_ = true;
      reason = std::move(abort_reason_);
      out_.clear();
    }
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd_.get(), nullptr);
    ::shutdown(fd_.get(), SHUT_RDWR);
    stop_.request_stop();
    return reason;
  }

 private:
  size_t write_some(std::string_view data) {
    size_t written = 0;
    while (written < data.size()) {
      const ssize_t n =
          ::send(fd_.get(), data.data() + written, data.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        written += static_cast<size_t>(n);
      } else if (errno != EINTR) {
        if (errno != EAGAIN) abort_locked("write: " + errno_text(errno));
        break;
      }
    }
    return written;
  }

  // Makes the I/O thread see the socket as finished and close it there.
  void abort_locked(std::string reason) {
    if (abort_reason_.empty()) abort_reason_ = std::move(reason);
    out_.clear();
    ::shutdown(fd_.get(), SHUT_RDWR);
  }

  void watch_writable_locked(bool on) {
    if (watching_writes_ == on) return;
    epoll_event ev{.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u), .data = {.u64 = id_}};
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_.get(), &ev);
    watching_writes_ = on;
  }

  const uint64_t id_;
  os::UniqueFd fd_;
  const int epoll_fd_;
  FrameDecoder decoder_;  // I/O thread only
  std::stop_source stop_;
  std::atomic<size_t> in_flight_ = 0;

  std::mutex write_mu_;  // below
  std::string out_;
  bool closed_ = false;
  bool watching_writes_ = false;
  std::string abort_reason_;
};

class Server::Impl {
 public:
  explicit Impl(ServerOptions options) : options_(options), pool_(options.max_workers) {}
  ~Impl() { shutdown(); }

  errdefs::Status add_handler(std::string_view service, std::string_view method, Handler handler) {
    std::lock_guard lock(mu_);
    if (started_) return errdefs::FailedPrecondition("ttrpc: handlers must be added before serving");
    auto& methods = services_[std::string(service)];
    if (!methods.emplace(std::string(method), std::move(handler)).second)
      return errdefs::AlreadyExists("ttrpc: handler for " + std::string(service) + "/" + std::string(method) +
                                    " already registered");
    return errdefs::Status::Ok();
  }

  errdefs::Status serve(os::UniqueFd listener) {
    if (!listener.valid()) return errdefs::InvalidArgument("ttrpc: serve needs a listening socket");
    CTRD_RETURN_IF_ERROR(set_nonblocking(listener.get()));
    std::lock_guard lock(mu_);
    CTRD_RETURN_IF_ERROR(start_locked());
    const uint64_t id = next_id_++;
    epoll_event ev{.events = EPOLLIN, .data = {.u64 = id}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0)
      return errdefs::FromErrno(errno, "ttrpc: epoll_ctl");
    listeners_.emplace(id, std::move(listener));
    return errdefs::Status::Ok();
  }

  errdefs::Status serve_connection(os::UniqueFd conn) {
    if (!conn.valid()) return errdefs::InvalidArgument("ttrpc: serve_connection needs a connected socket");
    CTRD_RETURN_IF_ERROR(set_nonblocking(conn.get()));
    std::lock_guard lock(mu_);
    CTRD_RETURN_IF_ERROR(start_locked());
    return add_connection_locked(std::move(conn));
  }

  void shutdown() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    if (io_thread_.joinable()) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof(one));
      io_thread_.join();
    }
    pool_.stop();
  }

  size_t connection_count() const {
    std::lock_guard lock(mu_);
    return connections_.size();
  }

 private:
  errdefs::Status start_locked() {
    if (stopping_) return errdefs::FailedPrecondition("ttrpc: server is shut down");
    if (started_) return errdefs::Status::Ok();
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) return errdefs::FromErrno(errno, "ttrpc: epoll_create1");
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) return errdefs::FromErrno(errno, "ttrpc: eventfd");
    epoll_event ev{.events = EPOLLIN, .data = {.u64 = kWakeId}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0)
      return errdefs::FromErrno(errno, "ttrpc: epoll_ctl");
    io_thread_ = std::thread([this] { io_loop(); });
    started_ = true;
    return errdefs::Status::Ok();
  }

  errdefs::Status add_connection_locked(os::UniqueFd fd) {
    const uint64_t id = next_id_++;
    const int raw = fd.get();
    auto conn = std::make_shared<Connection>(id, std::move(fd), epoll_.get());
    epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.u64 = id}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) != 0)
      return errdefs::FromErrno(errno, "ttrpc: epoll_ctl");
    connections_.emplace(id, std::move(conn));
    return errdefs::Status::Ok();
  }

  void io_loop() {
    constexpr int kMaxEvents = 64;
    epoll_event events[kMaxEvents];
    while (true) {
      resume_listeners();
      const int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, paused_listeners_.empty() ? -1 : 100);
      if (n < 0) {
        if (errno == EINTR) continue;
        log::error("ttrpc: epoll_wait failed; server stops", {{"error", errno_text(errno)}});
        break;
      }
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kWakeId) continue;
        std::shared_ptr<Connection> conn;
        int listener = -1;
        {
          std::lock_guard lock(mu_);
          if (auto it = connections_.find(id); it != connections_.end()) {
            conn = it->second;
          } else if (auto l = listeners_.find(id); l != listeners_.end()) {
            listener = l->second.get();
          }
        }
        if (listener >= 0) {
          accept_all(id, listener);
        } else if (conn) {
          if (events[i].events & EPOLLOUT) conn->flush();
          if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_from(conn);
        }
      }
    }

    // Shutting down: every peer sees its connection end.
    std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections;
    {
      std::lock_guard lock(mu_);
      connections.swap(connections_);
      listeners_.clear();
    }
    for (auto& [id, conn] : connections) conn->close();
  }

  void accept_all(uint64_t id, int listener) {
    while (true) {
      os::UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN) return;
        // Out of descriptors or memory: the pending connection stays queued,
        // so a level-triggered listener would spin; rest it for a moment.
        log::error("ttrpc: accept failed; pausing the listener", {{"error", errno_text(errno)}});
        epoll_event ev{.events = 0, .data = {.u64 = id}};
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener, &ev);
        paused_listeners_.emplace_back(id, Clock::now() + std::chrono::milliseconds(100));
        return;
      }
      if (options_.require_same_user) {
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::geteuid() ||
            cred.gid != ::getegid()) {
          log::warn("ttrpc: refusing connection from another user",
                    {{"uid", std::to_string(cred.uid)}, {"gid", std::to_string(cred.gid)}});
          continue;
        }
      }
      std::lock_guard lock(mu_);
      if (errdefs::Status added = add_connection_locked(std::move(fd)); !added.ok())
        log::error("ttrpc: cannot serve a connection", {{"error", added.to_string()}});
    }
  }

  void resume_listeners() {
    const auto now = Clock::now();
    std::erase_if(paused_listeners_, [&](const auto& paused) {
      if (paused.second > now) return false;
      std::lock_guard lock(mu_);
      if (auto l = listeners_.find(paused.first); l != listeners_.end()) {
        epoll_event ev{.events = EPOLLIN, .data = {.u64 = paused.first}};
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l->second.get(), &ev);
      }
      return true;
    });
  }

  void read_from(const std::shared_ptr<Connection>& conn) {
    FrameDecoder& decoder = conn->decoder();
    const ssize_t n = decoder.receive(conn->fd());
    if (n < 0) {
      if (errno == EAGAIN) return;
      close_connection(conn, "read: " + errno_text(errno), false);
      return;
    }
    if (n == 0) {
      close_connection(conn, "", false);
      return;
    }
    while (true) {
      auto frame = decoder.next();
      if (!frame.ok()) {
        close_connection(conn, frame.status().message(), true);
        return;
      }
      if (!frame->has_value()) return;
      dispatch(conn, **frame);
    }
  }

  void close_connection(const std::shared_ptr<Connection>& conn, std::string reason, bool bad_peer) {
    std::string broken = conn->close();
    if (reason.empty()) reason = std::move(broken);
    {
      std::lock_guard lock(mu_);
      connections_.erase(conn->id());
    }
    if (bad_peer || !reason.empty()) {
      log::warn("ttrpc: closing connection", {{"reason", reason.empty() ? "protocol error" : reason}});
    }
  }

  void reply(Connection& conn, uint32_t stream_id, const Response& response) {
    encode_response_frame(io_buf_, stream_id, response);
    conn.send(io_buf_);
  }

  void reply_error(Connection& conn, uint32_t stream_id, const errdefs::Status& status) {
    reply(conn, stream_id, response_from_status(status));
  }

  void dispatch(const std::shared_ptr<Connection>& conn, const FrameDecoder::Frame& frame) {
    const uint32_t id = frame.header.stream_id;
    if (frame.oversized) {
      reply_error(
          *conn, id,
          errdefs::ResourceExhausted("message length " + std::to_string(frame.header.length) +
                                     " exceed maximum message size of " + std::to_string(kMaxMessageSize)));
      return;
    }
    // ttRPC 1.1 peers never send anything else to a server.
    if (frame.header.type != MessageType::kRequest) return;

    auto request = std::make_shared<Request>();
    if (errdefs::Status decoded = decode(frame.payload, *request); !decoded.ok()) {
      reply_error(*conn, id, errdefs::InvalidArgument("unmarshal request error: " + decoded.message()));
      return;
    }
    if (id % 2 != 1) {
      reply_error(*conn, id, errdefs::InvalidArgument("StreamID must be odd for client initiated streams"));
      return;
    }
    const Handler* handler = find_handler(request->service, request->method, *conn, id);
    if (handler == nullptr) return;
    if (conn->in_flight().fetch_add(1) >= options_.max_requests_per_connection) {
      conn->in_flight().fetch_sub(1);
      reply_error(*conn, id, errdefs::ResourceExhausted("too many requests in flight on this connection"));
      return;
    }

    std::optional<Clock::time_point> deadline;
    if (request->timeout_nano > 0) deadline = Clock::now() + std::chrono::nanoseconds(request->timeout_nano);
    const bool queued = pool_.submit([conn, request, handler, deadline, id] {
      CallContext ctx{.service = std::move(request->service),
                      .method = std::move(request->method),
                      .metadata = std::move(request->metadata),
                      .deadline = deadline,
                      .stop = conn->stop_token()};
      Response response = run_handler(*handler, ctx, request->payload);
      thread_local std::string buf;
      encode_response_frame(buf, id, response);
      if (const size_t length = buf.size() - kFrameHeaderSize; length > kMaxMessageSize) {
        // The peer would discard it anyway; tell the caller why instead.
        encode_response_frame(
            buf, id,
            response_from_status(errdefs::ResourceExhausted(
                "ttrpc: " + ctx.service + "/" + ctx.method + " response length " + std::to_string(length) +
                " exceeds maximum message size of " + std::to_string(kMaxMessageSize))));
      }
      conn->send(buf);
      // Keep a huge answer's buffer from living on in the thread.
      if (buf.capacity() > (size_t{1} << 20)) std::string().swap(buf);
      conn->in_flight().fetch_sub(1);
    });
    if (!queued) conn->in_flight().fetch_sub(1);
  }

  const Handler* find_handler(const std::string& service, const std::string& method, Connection& conn,
                              uint32_t id) {
    // Read-only once serving started, so no lock.
    auto s = services_.find(service);
    if (s == services_.end()) {
      reply_error(conn, id, errdefs::NotImplemented("service " + service));
      return nullptr;
    }
    auto m = s->second.find(method);
    if (m == s->second.end()) {
      reply_error(conn, id, errdefs::NotImplemented("method " + method));
      return nullptr;
    }
    return &m->second;
  }

  static Response run_handler(const Handler& handler, const CallContext& ctx, std::string_view payload) {
    errdefs::StatusOr<std::string> result = errdefs::Unknown("no result");
    try {
      result = handler(ctx, payload);
    } catch (const std::exception& e) {
      // A handler bug must not take the daemon down with it.
      result = errdefs::Internal("ttrpc: " + ctx.service + "/" + ctx.method + " threw: " + e.what());
    } catch (...) {
      result = errdefs::Internal("ttrpc: " + ctx.service + "/" + ctx.method + " threw");
    }
    if (!result.ok()) return response_from_status(result.status());
    return Response{.payload = std::move(result).value()};
  }

  const ServerOptions options_;
  std::unordered_map<std::string, std::unordered_map<std::string, Handler>> services_;

  mutable std::mutex mu_;  // below
  bool started_ = false;
  bool stopping_ = false;
  uint64_t next_id_ = kWakeId + 1;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::unordered_map<uint64_t, os::UniqueFd> listeners_;

  os::UniqueFd epoll_;
  os::UniqueFd wake_;
  std::string io_buf_;                                                    // I/O thread's replies
  std::vector<std::pair<uint64_t, Clock::time_point>> paused_listeners_;  // I/O thread only
  std::thread io_thread_;
  executor::WorkerPool pool_;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(options)) {}
Server::~Server() = default;

errdefs::Status Server::add_handler(std::string_view service, std::string_view method, Handler handler) {
  return impl_->add_handler(service, method, std::move(handler));
}
errdefs::Status Server::serve(os::UniqueFd listener) { return impl_->serve(std::move(listener)); }
errdefs::Status Server::serve_connection(os::UniqueFd conn) {
  return impl_->serve_connection(std::move(conn));
}
void Server::shutdown() { impl_->shutdown(); }
size_t Server::connection_count() const { return impl_->connection_count(); }

errdefs::StatusOr<os::UniqueFd> listen_unix(std::string_view address) {
  std::string_view path = address;
  if (path.starts_with("unix://")) path.remove_prefix(7);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path))
    return errdefs::InvalidArgument("ttrpc: invalid socket address \"" + std::string(address) + "\"");
  std::memcpy(sa.sun_path, path.data(), path.size());

  const std::string p(path);
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0) {
    // Only ever replace a socket: a path naming anything else is a mistake.
    if (!S_ISSOCK(st.st_mode)) return errdefs::AlreadyExists("ttrpc: " + p + " exists and is not a socket");
    if (::unlink(p.c_str()) != 0) return errdefs::FromErrno(errno, "ttrpc: remove stale socket " + p);
  }
  os::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return errdefs::FromErrno(errno, "ttrpc: socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0)
    return errdefs::FromErrno(errno, "ttrpc: bind " + p);
  if (::listen(fd.get(), SOMAXCONN) != 0) return errdefs::FromErrno(errno, "ttrpc: listen " + p);
  return fd;
}

}  // namespace ctrd::ttrpc
