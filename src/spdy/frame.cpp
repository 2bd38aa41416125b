#include "spdy/frame.h"

#include <string>

namespace ctrd::spdy {
namespace {

constexpr uint32_t kStreamIdMask = 0x7fffffff;

uint32_t read_u32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(b[at + 3])};
}

uint32_t read_u24(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 16) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 2])};
}

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_u24(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_control_header(std::string& out, ControlType type, uint8_t flags, size_t length) {
  put_u32(out, 0x80000000u | (uint32_t{kVersion} << 16) | static_cast<uint16_t>(type));
  out.push_back(static_cast<char>(flags));
  put_u24(out, static_cast<uint32_t>(length));
}

errdefs::Status malformed(std::string_view what, uint32_t length) {
  return errdefs::InvalidArgument("spdy: malformed " + std::string(what) + " frame (length " +
                                  std::to_string(length) + ")");
}

errdefs::StatusOr<Frame> parse_control(uint16_t type, uint8_t flags, std::string_view p) {
  const auto length = static_cast<uint32_t>(p.size());
  switch (static_cast<ControlType>(type)) {
    case ControlType::kSynStream: {
      if (p.size() < 10) return malformed("SYN_STREAM", length);
      SynStream f{.stream_id = read_u32(p, 0) & kStreamIdMask,
                  .associated_stream_id = read_u32(p, 4) & kStreamIdMask,
                  .priority = static_cast<uint8_t>(static_cast<uint8_t>(p[8]) >> 5),
                  .flags = flags,
                  .header_block = p.substr(10)};
      if (f.stream_id == 0) return errdefs::InvalidArgument("spdy: SYN_STREAM for stream 0");
      return Frame(f);
    }
    case ControlType::kSynReply:
    case ControlType::kHeaders: {
      if (p.size() < 4)
        return malformed(static_cast<ControlType>(type) == ControlType::kSynReply ? "SYN_REPLY" : "HEADERS",
                         length);
      const uint32_t id = read_u32(p, 0) & kStreamIdMask;
      if (static_cast<ControlType>(type) == ControlType::kSynReply)
        return Frame(SynReply{.stream_id = id, .flags = flags, .header_block = p.substr(4)});
      return Frame(Headers{.stream_id = id, .flags = flags, .header_block = p.substr(4)});
    }
    case ControlType::kRstStream:
      if (p.size() != 8) return malformed("RST_STREAM", length);
      return Frame(RstStream{.stream_id = read_u32(p, 0) & kStreamIdMask, .status = read_u32(p, 4)});
    case ControlType::kSettings: {
      if (p.size() < 4) return malformed("SETTINGS", length);
      const uint32_t count = read_u32(p, 0);
      if ((p.size() - 4) / 8 != count || (p.size() - 4) % 8 != 0) return malformed("SETTINGS", length);
      Settings f{.flags = flags, .entries = {}};
      f.entries.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        const size_t at = 4 + size_t{i} * 8;
        f.entries.push_back(Setting{
            .flags = static_cast<uint8_t>(p[at]), .id = read_u24(p, at + 1), .value = read_u32(p, at + 4)});
      }
      return Frame(std::move(f));
    }
    case ControlType::kPing:
      if (p.size() != 4) return malformed("PING", length);
      return Frame(Ping{.id = read_u32(p, 0)});
    case ControlType::kGoAway:
      if (p.size() != 8) return malformed("GOAWAY", length);
      return Frame(GoAway{.last_good_stream_id = read_u32(p, 0) & kStreamIdMask, .status = read_u32(p, 4)});
    case ControlType::kWindowUpdate:
      if (p.size() != 8) return malformed("WINDOW_UPDATE", length);
      return Frame(
          WindowUpdate{.stream_id = read_u32(p, 0) & kStreamIdMask, .delta = read_u32(p, 4) & kStreamIdMask});
  }
  return Frame(UnknownControl{.type = type});
}

}  // namespace

void FrameReader::append(std::string_view bytes) {
  if (begin_ > 0 && begin_ == buffer_.size()) {
    buffer_.clear();
    begin_ = 0;
  } else if (begin_ > 4096 && begin_ * 2 > buffer_.size()) {
    buffer_.erase(0, begin_);
    begin_ = 0;
  }
  buffer_.append(bytes);
}

errdefs::StatusOr<std::optional<Frame>> FrameReader::next() {
  const std::string_view b = std::string_view(buffer_).substr(begin_);
  if (b.size() < kFrameHeaderSize) {
    // Everything consumed: let go of what a large frame needed.
    if (b.empty() && buffer_.capacity() > 64 * 1024) {
      std::string().swap(buffer_);
      begin_ = 0;
    }
    return std::optional<Frame>();
  }
  const uint32_t word = read_u32(b, 0);
  const uint8_t flags = static_cast<uint8_t>(b[4]);
  const uint32_t length = read_u24(b, 5);
  const bool control = (word & 0x80000000u) != 0;
  if (control && ((word >> 16) & 0x7fff) != kVersion)
    return errdefs::InvalidArgument("spdy: version " + std::to_string((word >> 16) & 0x7fff) +
                                    " control frame, only 3 is spoken");
  if (length > max_frame_length_)
    return errdefs::ResourceExhausted("spdy: a frame of " + std::to_string(length) +
                                      " bytes, over the limit of " + std::to_string(max_frame_length_));
  if (b.size() < kFrameHeaderSize + length) return std::optional<Frame>();
  const std::string_view payload = b.substr(kFrameHeaderSize, length);
  begin_ += kFrameHeaderSize + length;
  if (!control)
    return std::optional<Frame>(
        DataFrame{.stream_id = word & kStreamIdMask, .flags = flags, .data = payload});
  CTRD_ASSIGN_OR_RETURN(Frame frame, parse_control(static_cast<uint16_t>(word & 0xffff), flags, payload));
  return std::optional<Frame>(std::move(frame));
}

void append_data(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view data) {
  put_u32(out, stream_id & kStreamIdMask);
  out.push_back(static_cast<char>(flags));
  put_u24(out, static_cast<uint32_t>(data.size()));
  out.append(data);
}

void append_syn_stream(std::string& out, const SynStream& frame) {
  put_control_header(out, ControlType::kSynStream, frame.flags, 10 + frame.header_block.size());
  put_u32(out, frame.stream_id & kStreamIdMask);
  put_u32(out, frame.associated_stream_id & kStreamIdMask);
  out.push_back(static_cast<char>((frame.priority & 0x7) << 5));
  out.push_back('\0');  // slot
  out.append(frame.header_block);
}

void append_syn_reply(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view header_block) {
  put_control_header(out, ControlType::kSynReply, flags, 4 + header_block.size());
  put_u32(out, stream_id & kStreamIdMask);
  out.append(header_block);
}

void append_headers(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view header_block) {
  put_control_header(out, ControlType::kHeaders, flags, 4 + header_block.size());
  put_u32(out, stream_id & kStreamIdMask);
  out.append(header_block);
}

void append_rst_stream(std::string& out, uint32_t stream_id, RstStatus status) {
  put_control_header(out, ControlType::kRstStream, 0, 8);
  put_u32(out, stream_id & kStreamIdMask);
  put_u32(out, static_cast<uint32_t>(status));
}

void append_settings(std::string& out, const Settings& frame) {
  put_control_header(out, ControlType::kSettings, frame.flags, 4 + 8 * frame.entries.size());
  put_u32(out, static_cast<uint32_t>(frame.entries.size()));
  for (const Setting& s : frame.entries) {
    out.push_back(static_cast<char>(s.flags));
    put_u24(out, s.id);
    put_u32(out, s.value);
  }
}

void append_ping(std::string& out, uint32_t id) {
  put_control_header(out, ControlType::kPing, 0, 4);
  put_u32(out, id);
}

void append_goaway(std::string& out, uint32_t last_good_stream_id, GoAwayStatus status) {
  put_control_header(out, ControlType::kGoAway, 0, 8);
  put_u32(out, last_good_stream_id & kStreamIdMask);
  put_u32(out, static_cast<uint32_t>(status));
}

void append_window_update(std::string& out, uint32_t stream_id, uint32_t delta) {
  put_control_header(out, ControlType::kWindowUpdate, 0, 8);
  put_u32(out, stream_id & kStreamIdMask);
  put_u32(out, delta & kStreamIdMask);
}

}  // namespace ctrd::spdy
