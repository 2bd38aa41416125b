#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "log/log.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::ttrpc {
namespace {

std::string_view strip_unix_scheme(std::string_view address) {
  constexpr std::string_view kScheme = "unix://";
  if (address.starts_with(kScheme)) address.remove_prefix(kScheme.size());
  return address;
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

class ClientLoop::Impl {
 public:
  Impl() = default;
  ~Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  errdefs::Status start();
  // Registers a connection; it is read from the loop's thread until it
  // reports itself finished.
  errdefs::Status add(const std::shared_ptr<Client::Impl>& conn);
  // Finishes the connections left and joins the thread.
  void stop();
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_id_; }
  size_t connection_count() const {
    std::lock_guard lock(mu_);
    return conns_.size();
  }

 private:
  // epoll data of the wake-up eventfd; connection tokens start at 1.
  static constexpr uint64_t kWakeToken = 0;
  void run();

  os::UniqueFd epoll_;
  os::UniqueFd wake_;
  std::thread thread_;
  std::thread::id thread_id_;
  mutable std::mutex mu_;  // below
  std::unordered_map<uint64_t, std::shared_ptr<Client::Impl>> conns_;
  uint64_t next_token_ = 1;
  bool stopped_ = false;
};

class Client::Impl {
 public:
  Impl(os::UniqueFd fd, std::string address, ClientOptions options, std::shared_ptr<ClientLoop::Impl> loop)
      : fd_(std::move(fd)),
        address_(std::move(address)),
        options_(std::move(options)),
        loop_(std::move(loop)) {}

  ~Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  int fd() const { return fd_.get(); }

  errdefs::StatusOr<std::string> call(std::string_view service, std::string_view method,
                                      std::string_view request, const Metadata& metadata,
                                      std::optional<std::chrono::nanoseconds> timeout) {
    std::optional<Clock::time_point> deadline;
    if (timeout) {
      if (timeout->count() <= 0)
        return errdefs::DeadlineExceeded("ttrpc: " + std::string(service) + "/" + std::string(method) +
                                         ": deadline exceeded before sending");
      deadline = Clock::now() + *timeout;
    }

    Pending pending;
    uint32_t id = 0;
    {
      std::lock_guard lock(mu_);
      if (dead_) return unavailable_locked();
      id = next_id_;
      // Ids stay odd when they wrap, as client-initiated streams must be.
      next_id_ += 2;
      pending_.emplace(id, &pending);
    }

    if (errdefs::Status sent = send(id, service, method, request, metadata, deadline); !sent.ok()) {
      std::lock_guard lock(mu_);
      // A dying connection may have completed the call already.
      if (!pending.done) pending_.erase(id);
      return sent;
    }

    std::unique_lock lock(mu_);
    if (deadline) {
      if (!pending.cv.wait_until(lock, *deadline, [&] { return pending.done; })) {
        pending_.erase(id);
        return errdefs::DeadlineExceeded("ttrpc: " + std::string(service) + "/" + std::string(method) +
                                         ": deadline exceeded");
      }
    } else {
      pending.cv.wait(lock, [&] { return pending.done; });
    }
    if (!pending.status.ok()) return pending.status;
    return std::move(pending.payload);
  }

  void call_async(std::string_view service, std::string_view method, std::string_view request,
                  const Metadata& metadata, Client::Callback done) {
    auto pending = std::make_unique<Pending>();
    pending->callback = std::move(done);
    Pending* raw = pending.get();
    uint32_t id = 0;
    {
      std::unique_lock lock(mu_);
      if (dead_) {
        errdefs::Status failure = unavailable_locked();
        lock.unlock();
        raw->callback(failure);
        return;
      }
      id = next_id_;
      next_id_ += 2;
      pending_.emplace(id, raw);
      owned_.emplace(id, std::move(pending));
    }
    if (errdefs::Status sent = send(id, service, method, request, metadata, std::nullopt); !sent.ok()) {
      std::unique_ptr<Pending> mine;
      {
        std::lock_guard lock(mu_);
        // The loop may have failed it already, with the connection.
        if (auto it = owned_.find(id); it != owned_.end()) {
          mine = std::move(it->second);
          owned_.erase(it);
          pending_.erase(id);
        }
      }
      if (mine) mine->callback(sent);
    }
  }

  void close() {
    closing_ = true;
    // The loop sees the end of the stream and finishes the connection; the
    // descriptor stays open until the Impl is gone, so no other thread can
    // reuse its number meanwhile.
    ::shutdown(fd_.get(), SHUT_RDWR);
    // On the loop's thread (a callback), waiting would wait for ourselves.
    if (loop_->on_loop_thread()) return;
    std::unique_lock lock(mu_);
    finished_cv_.wait(lock, [&] { return finished_; });
  }

  // The loop says the socket is readable (or hung up): reads once, so that
  // one busy connection cannot starve the others. False once the connection
  // is finished and should leave the loop.
  bool on_readable() {
    const ssize_t n = decoder_.receive(fd_.get());
    if (n == 0) {
      finish(closing_ ? "client closed" : "connection closed by peer");
      return false;
    }
    if (n < 0) {
      if (errno == EAGAIN) return true;
      finish(closing_ ? "client closed" : "read: " + errno_text(errno));
      return false;
    }
    while (true) {
      auto frame = decoder_.next();
      if (!frame.ok()) {
        const std::string reason = "protocol error: " + frame.status().message();
        log::warn("ttrpc: closing connection", {{"address", address_}, {"reason", reason}});
        finish(reason);
        return false;
      }
      if (!frame->has_value()) return true;
      on_frame(**frame);
    }
  }

  // Fails every pending call, runs on_close once and wakes close().
  void finish(const std::string& reason) {
    std::unordered_map<uint32_t, std::unique_ptr<Pending>> async_failed;
    errdefs::Status failure;
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      dead_ = true;
      if (reason_.empty()) reason_ = reason;
      failure = unavailable_locked();
      for (auto& [id, p] : pending_) {
        if (p->callback) continue;
        p->status = failure;
        p->done = true;
        p->cv.notify_one();
      }
      pending_.clear();
      async_failed.swap(owned_);
    }
    for (auto& [id, p] : async_failed) p->callback(failure);
    ::shutdown(fd_.get(), SHUT_RDWR);
    if (options_.on_close) options_.on_close();
    std::lock_guard lock(mu_);
    finished_ = true;
    finished_cv_.notify_all();
  }

  bool closed() const {
    std::lock_guard lock(mu_);
    return dead_;
  }

  const std::string& address() const { return address_; }

 private:
  struct Pending {
    Client::Callback callback;  // set for call_async: no thread waits on cv
    std::condition_variable cv;
    bool done = false;
    errdefs::Status status;
    std::string payload;
  };

  errdefs::Status unavailable_locked() const {
    return errdefs::Unavailable("ttrpc: connection to " + address_ + " closed: " + reason_);
  }

  errdefs::Status send(uint32_t id, std::string_view service, std::string_view method,
                       std::string_view request, const Metadata& metadata,
                       std::optional<Clock::time_point> deadline) {
    std::lock_guard lock(write_mu_);
    write_buf_.clear();
    const size_t header = begin_frame(write_buf_, id, MessageType::kRequest);
    int64_t timeout_nano = 0;
    if (deadline) {
      // Zero would mean "no deadline" to the server: send at least 1ns.
      timeout_nano = std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - Clock::now()).count());
    }
    encode_request_append(service, method, request, timeout_nano, metadata, write_buf_);
    if (const size_t length = finish_frame(write_buf_, header); length > kMaxMessageSize) {
      return errdefs::ResourceExhausted(
          "ttrpc: " + std::string(service) + "/" + std::string(method) + ": message length " +
          std::to_string(length) + " exceeds maximum message size of " + std::to_string(kMaxMessageSize));
    }

    size_t written = 0;
    while (written < write_buf_.size()) {
      const ssize_t n = ::send(fd_.get(), write_buf_.data() + written, write_buf_.size() - written,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        written += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        const int err = errno;
        fail_connection("write: " + errno_text(err));
        std::lock_guard state(mu_);
        return unavailable_locked();
      }
      int wait_ms = -1;
      if (deadline) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
        wait_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
        if (left <= 0) {
          // Half a frame on the wire would corrupt every later call.
          if (written > 0) fail_connection("write timed out mid-frame");
          return errdefs::DeadlineExceeded("ttrpc: " + std::string(service) + "/" + std::string(method) +
                                           ": deadline exceeded while sending");
        }
      }
      pollfd p{.fd = fd_.get(), .events = POLLOUT, .revents = 0};
      ::poll(&p, 1, wait_ms);
    }
    return errdefs::Status::Ok();
  }

  // Shuts the socket down; the loop then fails every pending call.
  void fail_connection(std::string reason) {
    {
      std::lock_guard lock(mu_);
      if (reason_.empty()) reason_ = std::move(reason);
    }
    ::shutdown(fd_.get(), SHUT_RDWR);
  }

  void complete(uint32_t id, errdefs::Status status, std::string payload) {
    std::unique_lock lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      // Typically a call that timed out before its answer came.
      log::debug("ttrpc: response for an unknown stream",
                 {{"stream", std::to_string(id)}, {"address", address_}});
      return;
    }
    Pending& p = *it->second;
    pending_.erase(it);
    if (p.callback) {
      auto owned = owned_.extract(id);
      lock.unlock();
      if (status.ok()) {
        p.callback(std::move(payload));
      } else {
        p.callback(std::move(status));
      }
      return;
    }
    p.status = std::move(status);
    p.payload = std::move(payload);
    p.done = true;
    p.cv.notify_one();
  }

  void on_frame(const FrameDecoder::Frame& frame) {
    const uint32_t id = frame.header.stream_id;
    if (frame.header.type != MessageType::kResponse) {
      log::debug("ttrpc: ignoring a non-response frame",
                 {{"stream", std::to_string(id)}, {"address", address_}});
      return;
    }
    if (frame.oversized) {
      complete(
          id,
          errdefs::ResourceExhausted("ttrpc: message length " + std::to_string(frame.header.length) +
                                     " exceeds maximum message size of " + std::to_string(kMaxMessageSize)),
          {});
      return;
    }
    Response response;
    if (errdefs::Status decoded = decode(frame.payload, response); !decoded.ok()) {
      complete(id, errdefs::Internal(decoded.message() + " from " + address_), {});
      return;
    }
    complete(id, status_from_response(response), std::move(response.payload));
  }

  os::UniqueFd fd_;
  const std::string address_;
  ClientOptions options_;

  std::mutex write_mu_;  // one frame on the wire at a time
  std::string write_buf_;

  mutable std::mutex mu_;  // everything below
  std::unordered_map<uint32_t, Pending*> pending_;
  std::unordered_map<uint32_t, std::unique_ptr<Pending>> owned_;  // call_async's
  uint32_t next_id_ = 1;
  bool dead_ = false;
  std::string reason_;

  bool finished_ = false;  // on_close has run; nothing more will
  std::condition_variable finished_cv_;

  std::atomic<bool> closing_ = false;
  FrameDecoder decoder_;  // the loop's thread only
  const std::shared_ptr<ClientLoop::Impl> loop_;
};

errdefs::Status ClientLoop::Impl::start() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return errdefs::FromErrno(errno, "ttrpc: epoll_create1");
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) return errdefs::FromErrno(errno, "ttrpc: eventfd");
  epoll_event ev{.events = EPOLLIN, .data = {.u64 = kWakeToken}};
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0)
    return errdefs::FromErrno(errno, "ttrpc: epoll_ctl");
  thread_ = std::thread([this] { run(); });
  thread_id_ = thread_.get_id();
  return errdefs::Status::Ok();
}

errdefs::Status ClientLoop::Impl::add(const std::shared_ptr<Client::Impl>& conn) {
  std::lock_guard lock(mu_);
  if (stopped_ || !epoll_.valid()) return errdefs::Unavailable("ttrpc: client loop stopped");
  const uint64_t token = next_token_++;
  epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.u64 = token}};
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn->fd(), &ev) != 0)
    return errdefs::FromErrno(errno, "ttrpc: epoll_ctl");
  conns_.emplace(token, conn);
  return errdefs::Status::Ok();
}

void ClientLoop::Impl::run() {
  std::array<epoll_event, 32> events{};
  while (true) {
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("ttrpc: client loop stopped", {{"error", errno_text(errno)}});
      return;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t token = events[i].data.u64;
      if (token == kWakeToken) return;
      std::shared_ptr<Client::Impl> conn;
      {
        std::lock_guard lock(mu_);
        auto it = conns_.find(token);
        if (it == conns_.end()) continue;
        conn = it->second;
      }
      if (conn->on_readable()) continue;
      std::lock_guard lock(mu_);
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, conn->fd(), nullptr);
      conns_.erase(token);
    }
  }
}

void ClientLoop::Impl::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
  std::unordered_map<uint64_t, std::shared_ptr<Client::Impl>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(conns_);
  }
  for (auto& [token, conn] : left) conn->finish("client loop stopped");
}

ClientLoop::ClientLoop() : impl_(std::make_shared<Impl>()) {
  if (errdefs::Status started = impl_->start(); !started.ok())
    log::error("ttrpc: cannot start the client loop", {{"error", started.message()}});
}
ClientLoop::~ClientLoop() { impl_->stop(); }
size_t ClientLoop::connection_count() const { return impl_->connection_count(); }

errdefs::StatusOr<std::unique_ptr<Client>> Client::connect(std::string_view address, ClientOptions options) {
  const std::string_view path = strip_unix_scheme(address);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path))
    return errdefs::InvalidArgument("ttrpc: invalid socket address \"" + std::string(address) + "\"");
  std::memcpy(sa.sun_path, path.data(), path.size());

  os::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errdefs::FromErrno(errno, "ttrpc: socket");
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno == EINTR) continue;
    return errdefs::Unavailable("ttrpc: connect " + std::string(address) + ": " + errno_text(errno));
  }
  return from_fd(std::move(fd), std::string(address), std::move(options));
}

errdefs::StatusOr<std::unique_ptr<Client>> Client::from_fd(os::UniqueFd conn, std::string address,
                                                           ClientOptions options) {
  if (!conn.valid()) return errdefs::InvalidArgument("ttrpc: no connection for " + address);
  std::unique_ptr<ClientLoop> own_loop;
  if (options.loop == nullptr) own_loop = std::make_unique<ClientLoop>();
  std::shared_ptr<ClientLoop::Impl> loop = options.loop ? options.loop->impl_ : own_loop->impl_;
  auto impl = std::make_shared<Impl>(std::move(conn), std::move(address), std::move(options), loop);
  CTRD_RETURN_IF_ERROR(loop->add(impl));
  return std::unique_ptr<Client>(new Client(std::move(own_loop), std::move(impl)));
}

Client::Client(std::unique_ptr<ClientLoop> own_loop, std::shared_ptr<Impl> impl)
    : own_loop_(std::move(own_loop)), impl_(std::move(impl)) {}
Client::~Client() { impl_->close(); }

errdefs::StatusOr<std::string> Client::call(std::string_view service, std::string_view method,
                                            std::string_view request, const Metadata& metadata,
                                            std::optional<std::chrono::nanoseconds> timeout) {
  return impl_->call(service, method, request, metadata, timeout);
}

void Client::call_async(std::string_view service, std::string_view method, std::string_view request,
                        const Metadata& metadata, Callback done) {
  impl_->call_async(service, method, request, metadata, std::move(done));
}

void Client::close() { impl_->close(); }
bool Client::closed() const { return impl_->closed(); }
const std::string& Client::address() const { return impl_->address(); }

}  // namespace ctrd::ttrpc
