#include "streaming/spdy_session.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <variant>

namespace ctrd::streaming {
namespace {

constexpr size_t kReadChunk = 32 * 1024;  // one DATA frame at most
// Consumed bytes are acknowledged once half a window has gone.
constexpr uint32_t kWindowUpdateThreshold = spdy::kInitialWindow / 2;

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

errdefs::StatusOr<std::unique_ptr<SpdySession>> SpdySession::create(os::UniqueFd conn,
                                                                    std::string already_read,
                                                                    Options options) {
  std::unique_ptr<SpdySession> s(new SpdySession(std::move(conn), options));
  CTRD_ASSIGN_OR_RETURN(s->compressor_, spdy::HeaderCompressor::create());
  CTRD_ASSIGN_OR_RETURN(s->decompressor_, spdy::HeaderDecompressor::create());
  set_nonblocking(s->conn_.get());
  s->reader_.append(already_read);
  return s;
}

SpdySession::~SpdySession() = default;

void SpdySession::pipe_out(uint32_t stream_id, os::UniqueFd fd) {
  set_nonblocking(fd.get());
  Binding& b = bindings_[stream_id];
  b.fd = std::move(fd);
  b.reading = true;
}

void SpdySession::pipe_in(uint32_t stream_id, os::UniqueFd fd, std::function<void()> on_end) {
  set_nonblocking(fd.get());
  Binding& b = bindings_[stream_id];
  b.fd = std::move(fd);
  b.writing = true;
  b.on_end = std::move(on_end);
}

void SpdySession::pipe_both(uint32_t stream_id, os::UniqueFd fd, std::function<void()> on_end) {
  set_nonblocking(fd.get());
  Binding& b = bindings_[stream_id];
  b.fd = std::move(fd);
  b.reading = b.writing = b.both = true;
  b.on_read_end = std::move(on_end);
}

void SpdySession::on_data(uint32_t stream_id, std::function<void(std::string_view)> on_bytes) {
  bindings_[stream_id].on_bytes = std::move(on_bytes);
}

void SpdySession::on_stream(std::function<void(const Stream&)> on_new) { on_new_ = std::move(on_new); }

void SpdySession::queue_frame_data(uint32_t stream_id, uint8_t flags, std::string_view data) {
  spdy::append_data(out_, stream_id, flags, data);
}

void SpdySession::send(uint32_t stream_id, std::string_view data, bool fin) {
  // Frames stay under the reader limits peers use (spdystream: 16 MiB).
  do {
    const std::string_view chunk = data.substr(0, kReadChunk);
    data.remove_prefix(chunk.size());
    queue_frame_data(stream_id, fin && data.empty() ? spdy::kFlagFin : 0, chunk);
  } while (!data.empty());
}

void SpdySession::reset(uint32_t stream_id, spdy::RstStatus status) {
  spdy::append_rst_stream(out_, stream_id, status);
  bindings_.erase(stream_id);
}

bool SpdySession::outputs_done() const {
  for (const auto& [id, b] : bindings_)
    if (b.reading) return false;
  return true;
}

errdefs::Status SpdySession::handle(const spdy::Frame& frame) {
  if (auto* syn = std::get_if<spdy::SynStream>(&frame)) {
    CTRD_ASSIGN_OR_RETURN(spdy::HeaderPairs headers, decompressor_->decompress(syn->header_block));
    CTRD_ASSIGN_OR_RETURN(std::string reply, compressor_->compress({}));
    spdy::append_syn_reply(out_, syn->stream_id, 0, reply);
    Stream stream{.id = syn->stream_id, .headers = std::move(headers)};
    if (accepting_) accepted_.push_back(stream);
    if (on_new_) on_new_(stream);
    return errdefs::Status::Ok();
  }
  if (auto* data = std::get_if<spdy::DataFrame>(&frame)) {
    auto it = bindings_.find(data->stream_id);
    if (it != bindings_.end()) {
      Binding& b = it->second;
      if (b.on_bytes && !data->data.empty()) b.on_bytes(data->data);
      if (b.writing) {
        b.pending.append(data->data);
        if (data->flags & spdy::kFlagFin) b.close_after_pending = true;
        write_binding(data->stream_id, b);
      }
    }
    // Acknowledge what was taken, for clients that keep windows.
    uint32_t& consumed = consumed_[data->stream_id];
    consumed += static_cast<uint32_t>(data->data.size());
    if (consumed >= kWindowUpdateThreshold) {
      spdy::append_window_update(out_, data->stream_id, consumed);
      spdy::append_window_update(out_, 0, consumed);
      consumed = 0;
    }
    if (data->flags & spdy::kFlagFin) consumed_.erase(data->stream_id);
    return errdefs::Status::Ok();
  }
  if (auto* ping = std::get_if<spdy::Ping>(&frame)) {
    spdy::append_ping(out_, ping->id);
    return errdefs::Status::Ok();
  }
  if (auto* rst = std::get_if<spdy::RstStream>(&frame)) {
    bindings_.erase(rst->stream_id);
    return errdefs::Status::Ok();
  }
  if (std::holds_alternative<spdy::GoAway>(frame)) {
    goaway_received_ = true;
    return errdefs::Status::Ok();
  }
  // SETTINGS, WINDOW_UPDATE, HEADERS, SYN_REPLY (no stream is opened here)
  // and unknown control frames change nothing the session relies on.
  return errdefs::Status::Ok();
}

errdefs::Status SpdySession::read_connection() {
  char buffer[64 * 1024];
  const ssize_t n = ::recv(conn_.get(), buffer, sizeof buffer, MSG_DONTWAIT);
  if (n == 0) {
    peer_closed_ = true;
    return errdefs::Status::Ok();
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return errdefs::Status::Ok();
    peer_closed_ = true;
    return errdefs::Unavailable(std::string("streaming: read from the client: ") + std::strerror(errno));
  }
  last_activity_ = std::chrono::steady_clock::now();
  reader_.append(std::string_view(buffer, static_cast<size_t>(n)));
  while (true) {
    auto frame = reader_.next();
    if (!frame.ok()) {
      spdy::append_goaway(out_, 0, spdy::GoAwayStatus::kProtocolError);
      return errdefs::Unavailable("streaming: the client broke the SPDY protocol: " +
                                  frame.status().message());
    }
    if (!frame->has_value()) return errdefs::Status::Ok();
    if (auto handled = handle(**frame); !handled.ok()) {
      spdy::append_goaway(out_, 0, spdy::GoAwayStatus::kProtocolError);
      return errdefs::Unavailable("streaming: the client broke the SPDY protocol: " + handled.message());
    }
  }
}

void SpdySession::end_writing(Binding& b) {
  b.writing = false;
  if (b.both)
    ::shutdown(b.fd.get(), SHUT_WR);
  else if (!b.reading)
    b.fd.reset();
  if (auto on_end = std::move(b.on_end)) on_end();
}

void SpdySession::write_binding(uint32_t /*stream_id*/, Binding& b) {
  while (!b.pending.empty() && b.fd.valid()) {
    const ssize_t n = ::write(b.fd.get(), b.pending.data(), b.pending.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      // The process or socket is gone: what it would have read is dropped.
      b.pending.clear();
      break;
    }
    b.pending.erase(0, static_cast<size_t>(n));
  }
  if (b.pending.empty() && b.close_after_pending && b.writing) end_writing(b);
}

void SpdySession::read_binding(uint32_t stream_id, Binding& b) {
  char buffer[kReadChunk];
  const ssize_t n = ::read(b.fd.get(), buffer, sizeof buffer);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) {
    last_activity_ = std::chrono::steady_clock::now();
    queue_frame_data(stream_id, 0, std::string_view(buffer, static_cast<size_t>(n)));
    return;
  }
  // End (or an error, taken as one): the stream ends with it.
  queue_frame_data(stream_id, spdy::kFlagFin, {});
  b.reading = false;
  if (!b.writing) b.fd.reset();
  if (auto on_end = std::move(b.on_read_end)) on_end();
}

errdefs::Status SpdySession::write_connection() {
  while (out_offset_ < out_.size()) {
    const ssize_t n = ::send(conn_.get(), out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      peer_closed_ = true;
      return errdefs::Unavailable(std::string("streaming: write to the client: ") + std::strerror(errno));
    }
    out_offset_ += static_cast<size_t>(n);
    last_activity_ = std::chrono::steady_clock::now();
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  } else if (out_offset_ > (1 << 16)) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  return errdefs::Status::Ok();
}

errdefs::StatusOr<bool> SpdySession::turn(int wake_fd, std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds;
  std::vector<uint32_t> ids;  // stream of fds[i], for i >= 2
  const bool out_full = out_.size() - out_offset_ >= options_.max_buffered;
  size_t pending_in = 0;
  for (const auto& [id, b] : bindings_) pending_in += b.pending.size();
  short conn_events = 0;
  if (pending_in < options_.max_buffered && !peer_closed_) conn_events |= POLLIN;
  if (out_offset_ < out_.size()) conn_events |= POLLOUT;
  fds.push_back({conn_.get(), conn_events, 0});
  fds.push_back({wake_fd, static_cast<short>(wake_fd >= 0 ? POLLIN : 0), 0});
  for (auto& [id, b] : bindings_) {
    short events = 0;
    if (b.reading && !out_full) events |= POLLIN;
    if (b.writing && !b.pending.empty()) events |= POLLOUT;
    if (events == 0 || !b.fd.valid()) continue;
    fds.push_back({b.fd.get(), events, 0});
    ids.push_back(id);
  }
  const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
  if (ready < 0) {
    if (errno == EINTR) return true;
    return errdefs::Internal(std::string("streaming: poll: ") + std::strerror(errno));
  }
  if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) CTRD_RETURN_IF_ERROR(read_connection());
  for (size_t i = 2; i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    auto it = bindings_.find(ids[i - 2]);
    if (it == bindings_.end()) continue;  // reset meanwhile
    Binding& b = it->second;
    if (b.writing && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) write_binding(it->first, b);
    if (b.reading && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) read_binding(it->first, b);
  }
  for (auto it = bindings_.begin(); it != bindings_.end();)
    it = (!it->second.reading && !it->second.writing && !it->second.on_bytes) ? bindings_.erase(it) : ++it;
  CTRD_RETURN_IF_ERROR(write_connection());
  return !peer_closed_ && !goaway_received_;
}

errdefs::StatusOr<std::vector<SpdySession::Stream>> SpdySession::accept_streams(
    const std::function<bool(const std::vector<Stream>&)>& enough,
    std::chrono::steady_clock::time_point deadline) {
  accepting_ = true;
  accepted_.clear();
  // Frames that came with the upgrade request are already buffered.
  while (true) {
    auto frame = reader_.next();
    if (!frame.ok() || !frame->has_value()) break;
    CTRD_RETURN_IF_ERROR(handle(**frame));
  }
  while (!enough(accepted_)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      accepting_ = false;
      return errdefs::DeadlineExceeded("streaming: timed out waiting for the client to create its streams");
    }
    CTRD_ASSIGN_OR_RETURN(bool open,
                          turn(-1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
    if (!open) {
      accepting_ = false;
      return errdefs::Unavailable("streaming: the client left before creating its streams");
    }
  }
  accepting_ = false;
  return std::move(accepted_);
}

errdefs::Status SpdySession::run(int wake_fd, const std::function<bool()>& finished,
                                 std::chrono::milliseconds tick) {
  while (!finished()) {
    if (std::chrono::steady_clock::now() - last_activity_ > options_.idle_timeout)
      return errdefs::DeadlineExceeded("streaming: the connection was idle for too long");
    CTRD_ASSIGN_OR_RETURN(bool open, turn(wake_fd, tick));
    if (!open) return errdefs::Unavailable("streaming: the client closed the connection");
  }
  return errdefs::Status::Ok();
}

void SpdySession::close(std::chrono::milliseconds grace) {
  if (!peer_closed_) {
    spdy::append_goaway(out_, 0, spdy::GoAwayStatus::kOk);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (out_offset_ < out_.size() && !peer_closed_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{conn_.get(), POLLOUT, 0};
      if (::poll(&p, 1, 100) < 0 && errno != EINTR) break;
      if (!write_connection().ok()) break;
    }
  }
  ::shutdown(conn_.get(), SHUT_RDWR);
  bindings_.clear();
}

}  // namespace ctrd::streaming
