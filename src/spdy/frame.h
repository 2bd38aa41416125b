// spdy/frame: SPDY/3.1 frames on the wire — the transport the Kubernetes
// streaming protocols (remote command, port forward) ride on between the
// kubelet or kubectl and a container runtime's streaming server. An
// incremental reader that holds at most one frame, and writers that append
// frames to a buffer. Pure functions, no I/O, so the fuzzer drives exactly
// what the server runs. Header blocks stay compressed here (spdy/header_block).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr size_t kFrameHeaderSize = 8;
// The largest length a frame header can carry (24 bits).
inline constexpr uint32_t kMaxFrameLength = (1u << 24) - 1;
// SPDY/3.1's initial window, for each stream and for the session.
inline constexpr uint32_t kInitialWindow = 64 * 1024;

enum class ControlType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;             // data, SYN_STREAM, SYN_REPLY, HEADERS
inline constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM
inline constexpr uint8_t kFlagClearSettings = 0x01;   // SETTINGS

// RST_STREAM status codes.
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

// GOAWAY status codes.
enum class GoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

// SETTINGS ids used here.
inline constexpr uint32_t kSettingInitialWindowSize = 7;

// Views into the reader's buffer: valid until its next append() or next().
struct DataFrame {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string_view data;
};
struct SynStream {
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;  // 0 (highest) to 7
  uint8_t flags = 0;
  std::string_view header_block;
};
struct SynReply {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string_view header_block;
};
struct Headers {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string_view header_block;
};
struct RstStream {
  uint32_t stream_id = 0;
  uint32_t status = 0;
};
struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits
  uint32_t value = 0;
};
struct Settings {
  uint8_t flags = 0;
  std::vector<Setting> entries;
};
struct Ping {
  uint32_t id = 0;
};
struct GoAway {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;
};
struct WindowUpdate {
  uint32_t stream_id = 0;  // 0: the session's window
  uint32_t delta = 0;
};
// A control frame of a type SPDY/3 does not define: the spec says to ignore it.
struct UnknownControl {
  uint16_t type = 0;
};

using Frame = std::variant<DataFrame, SynStream, SynReply, Headers, RstStream, Settings, Ping, GoAway,
                           WindowUpdate, UnknownControl>;

// Reads frames from the bytes a connection delivers, holding at most one
// frame of up to `max_frame_length` bytes (a longer one is an error: the
// connection cannot go on in step with its peer).
class FrameReader {
 public:
  explicit FrameReader(uint32_t max_frame_length = 1u << 20) : max_frame_length_(max_frame_length) {}

  void append(std::string_view bytes);

  // The next complete frame; nullopt when more bytes are needed. An error
  // (InvalidArgument, or ResourceExhausted for a frame over the limit) means
  // the peer does not speak SPDY/3 here and nothing after can be trusted.
  errdefs::StatusOr<std::optional<Frame>> next();

  // Bytes held for a frame not complete yet.
  size_t buffered() const { return buffer_.size() - begin_; }

 private:
  std::string buffer_;
  size_t begin_ = 0;  // first byte not consumed
  const uint32_t max_frame_length_;
};

// Writers: each appends one whole frame to `out`. Stream ids are 31 bits.
void append_data(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view data);
void append_syn_stream(std::string& out, const SynStream& frame);
void append_syn_reply(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view header_block);
void append_headers(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view header_block);
void append_rst_stream(std::string& out, uint32_t stream_id, RstStatus status);
void append_settings(std::string& out, const Settings& frame);
void append_ping(std::string& out, uint32_t id);
void append_goaway(std::string& out, uint32_t last_good_stream_id, GoAwayStatus status);
void append_window_update(std::string& out, uint32_t stream_id, uint32_t delta);

}  // namespace ctrd::spdy
