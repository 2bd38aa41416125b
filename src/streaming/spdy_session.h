// streaming/spdy_session: the server side of one SPDY/3.1 connection after
// the HTTP upgrade, run by the thread that serves the connection. It accepts
// the client's streams (each SYN_STREAM answered with a SYN_REPLY) and moves
// bytes between streams and file descriptors: a process's stdio, a socket in
// a pod. One poll(2) loop over the connection and every bound descriptor; a
// slow side is met with back-pressure (bounded buffers), never unbounded
// memory.
//
// Flow control: the session acknowledges what it consumes with
// WINDOW_UPDATEs (per stream and for the session), for clients that keep
// windows. It does not hold its own output back for the client's windows:
// spdystream, under the Kubernetes clients, never sends a WINDOW_UPDATE, so a
// sender that waited for one would stall after 64 KiB. Its output is bounded
// by back-pressure on the connection instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"
#include "spdy/frame.h"
#include "spdy/header_block.h"

namespace ctrd::streaming {

class SpdySession {
 public:
  struct Stream {
    uint32_t id = 0;
    spdy::HeaderPairs headers;
    std::string_view type() const { return spdy::header_value(headers, "streamtype"); }
  };
  struct Options {
    // Bytes waiting to be written to the connection, or to one bound
    // descriptor, before the side feeding them is no longer read.
    size_t max_buffered = 1 << 20;
    // The whole run() ends after this long without a byte either way.
    std::chrono::milliseconds idle_timeout = std::chrono::hours(4);
  };

  // `conn` is the upgraded connection; `already_read` what followed the HTTP
  // request in the same read.
  static errdefs::StatusOr<std::unique_ptr<SpdySession>> create(os::UniqueFd conn, std::string already_read,
                                                                Options options);
  ~SpdySession();
  SpdySession(const SpdySession&) = delete;
  SpdySession& operator=(const SpdySession&) = delete;

  // Reads until `enough(streams so far)`, or DeadlineExceeded at `deadline`.
  errdefs::StatusOr<std::vector<Stream>> accept_streams(
      const std::function<bool(const std::vector<Stream>&)>& enough,
      std::chrono::steady_clock::time_point deadline);

  // Bytes read from `fd` go out on the stream; its end ends the stream (FIN).
  void pipe_out(uint32_t stream_id, os::UniqueFd fd);
  // Bytes of the stream are written to `fd`; the stream's end closes it,
  // then calls `on_end` (a shim keeps stdin open until told: CloseIO).
  void pipe_in(uint32_t stream_id, os::UniqueFd fd, std::function<void()> on_end = {});
  // The same descriptor both ways (a socket): the stream's end shuts down its
  // write side; its read side's end ends the stream, then calls `on_end`.
  void pipe_both(uint32_t stream_id, os::UniqueFd fd, std::function<void()> on_end = {});
  // Bytes of the stream are handed to `on_bytes` (the resize stream).
  void on_data(uint32_t stream_id, std::function<void(std::string_view)> on_bytes);
  // Streams the client opens during run() (port forward opens them at will).
  void on_stream(std::function<void(const Stream&)> on_new);

  // Queues bytes on a stream; `fin` ends it.
  void send(uint32_t stream_id, std::string_view data, bool fin);
  void reset(uint32_t stream_id, spdy::RstStatus status);

  // Serves until `finished()` (asked after every turn, at least every
  // `tick`) or the client leaves; `wake_fd` (>= 0) is polled too, so an
  // event outside the session (a process's exit) ends a wait at once.
  // Ok when `finished()`; Unavailable when the client left or broke the protocol.
  errdefs::Status run(int wake_fd, const std::function<bool()>& finished,
                      std::chrono::milliseconds tick = std::chrono::milliseconds(100));

  // Whether every pipe_out and pipe_both descriptor reached its end and its
  // bytes went out as frames.
  bool outputs_done() const;

  // GOAWAY, then what is queued is written (for up to `grace`), then the
  // connection is shut down.
  void close(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  struct Binding {
    os::UniqueFd fd;
    bool reading = false;  // fd -> stream, until its end
    bool writing = false;  // stream -> fd, until the stream's end
    bool both = false;
    std::string pending;  // stream bytes not yet written to fd
    bool close_after_pending = false;
    std::function<void(std::string_view)> on_bytes;
    std::function<void()> on_end;       // pipe_in: after writing ended
    std::function<void()> on_read_end;  // pipe_both: after reading ended
  };

  SpdySession(os::UniqueFd conn, Options options) : conn_(std::move(conn)), options_(options) {}

  // One turn: poll, then whatever is ready. False when the connection ended.
  errdefs::StatusOr<bool> turn(int wake_fd, std::chrono::milliseconds timeout);
  errdefs::Status read_connection();
  errdefs::Status handle(const spdy::Frame& frame);
  void read_binding(uint32_t stream_id, Binding& b);
  void write_binding(uint32_t stream_id, Binding& b);
  void end_writing(Binding& b);
  errdefs::Status write_connection();
  void queue_frame_data(uint32_t stream_id, uint8_t flags, std::string_view data);

  os::UniqueFd conn_;
  const Options options_;
  spdy::FrameReader reader_;
  std::unique_ptr<spdy::HeaderCompressor> compressor_;
  std::unique_ptr<spdy::HeaderDecompressor> decompressor_;
  std::string out_;  // frames not written yet
  size_t out_offset_ = 0;
  bool peer_closed_ = false;
  bool goaway_received_ = false;
  std::vector<Stream> accepted_;  // during accept_streams
  bool accepting_ = false;
  std::function<void(const Stream&)> on_new_;
  std::map<uint32_t, Binding> bindings_;
  std::map<uint32_t, uint32_t> consumed_;  // bytes per stream since the last WINDOW_UPDATE
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
};

}  // namespace ctrd::streaming
