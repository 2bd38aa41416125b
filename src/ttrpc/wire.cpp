#include "ttrpc/wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>

namespace ctrd::ttrpc {
namespace {

using google::protobuf::io::CodedInputStream;

// The protobuf wire format's tags (field number << 3 | wire type), from its
// published encoding: no internal protobuf API, so no upgrade can break it.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLen = 2;
constexpr uint32_t kFixed32 = 5;

constexpr uint32_t wire_type_of(uint32_t tag) { return tag & 7; }
constexpr uint32_t field_of(uint32_t tag) { return tag >> 3; }

constexpr uint32_t tag(uint32_t field, uint32_t wire_type) { return (field << 3) | wire_type; }

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

size_t len_field_size(uint32_t field, size_t size) {
  return varint_size(tag(field, kLen)) + varint_size(size) + size;
}

// proto3: empty strings are not written.
void put_string(std::string& out, uint32_t field, std::string_view value) {
  if (value.empty()) return;
  put_varint(out, tag(field, kLen));
  put_varint(out, value.size());
  out.append(value);
}

size_t string_field_size(uint32_t field, std::string_view value) {
  return value.empty() ? 0 : len_field_size(field, value.size());
}

size_t key_value_size(const std::pair<std::string, std::string>& kv) {
  return string_field_size(1, kv.first) + string_field_size(2, kv.second);
}

size_t status_size(const Response& r) {
  size_t n = string_field_size(2, r.message);
  // Negative int32 values are sign-extended to ten bytes, as protobuf does.
  if (r.code != 0) n += varint_size(tag(1, kVarint)) + varint_size(static_cast<uint64_t>(int64_t{r.code}));
  return n;
}

errdefs::Status malformed(std::string_view what) {
  return errdefs::InvalidArgument("ttrpc: malformed " + std::string(what));
}

// Reads a length-delimited field into `out`, or fails on a wrong wire type.
bool read_bytes(CodedInputStream& in, uint32_t t, std::string& out) {
  if (wire_type_of(t) != kLen) return false;
  uint32_t size = 0;
  return in.ReadVarint32(&size) && in.ReadString(&out, static_cast<int>(std::min<uint32_t>(size, INT_MAX)));
}

bool read_submessage(CodedInputStream& in, uint32_t t, std::string_view& out) {
  if (wire_type_of(t) != kLen) return false;
  uint32_t size = 0;
  const void* data = nullptr;
  int available = 0;
  if (!in.ReadVarint32(&size)) return false;
  // Sub-messages are parsed from a view into the (contiguous) input.
  if (!in.GetDirectBufferPointer(&data, &available)) available = 0;
  if (size == 0) {
    out = {};
    return true;
  }
  if (static_cast<uint64_t>(available) < size) return false;
  out = std::string_view(static_cast<const char*>(data), size);
  return in.Skip(static_cast<int>(size));
}

bool read_varint(CodedInputStream& in, uint32_t t, uint64_t& out) {
  if (wire_type_of(t) != kVarint) return false;
  return in.ReadVarint64(&out);
}

// Skips an unknown field. Field 0 does not exist; protobuf rejects it, and
// so do we. Groups (wire types 3 and 4) are proto2 only: no ttRPC message
// has them, so they are malformed here.
bool skip_field(CodedInputStream& in, uint32_t t) {
  if (field_of(t) == 0) return false;
  switch (wire_type_of(t)) {
    case kVarint: {
      uint64_t ignored = 0;
      return in.ReadVarint64(&ignored);
    }
    case kFixed64: {
      uint64_t ignored = 0;
      return in.ReadLittleEndian64(&ignored);
    }
    case kLen: {
      uint32_t size = 0;
      return in.ReadVarint32(&size) && size <= INT_MAX && in.Skip(static_cast<int>(size));
    }
    case kFixed32: {
      uint32_t ignored = 0;
      return in.ReadLittleEndian32(&ignored);
    }
    default:
      return false;
  }
}

bool make_input(std::string_view bytes, std::optional<CodedInputStream>& in) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return false;
  in.emplace(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  return true;
}

errdefs::Status decode_key_value(std::string_view bytes, std::pair<std::string, std::string>& out) {
  std::optional<CodedInputStream> in;
  if (!make_input(bytes, in)) return malformed("metadata entry");
  while (uint32_t t = in->ReadTag()) {
    bool ok = false;
    switch (field_of(t)) {
      case 1:
        ok = read_bytes(*in, t, out.first);
        break;
      case 2:
        ok = read_bytes(*in, t, out.second);
        break;
      default:
        ok = skip_field(*in, t);
    }
    if (!ok) return malformed("metadata entry");
  }
  if (!in->ConsumedEntireMessage()) return malformed("metadata entry");
  return errdefs::Status::Ok();
}

errdefs::Status decode_status(std::string_view bytes, Response& out) {
  std::optional<CodedInputStream> in;
  if (!make_input(bytes, in)) return malformed("response status");
  while (uint32_t t = in->ReadTag()) {
    bool ok = false;
    uint64_t v = 0;
    switch (field_of(t)) {
      case 1:
        ok = read_varint(*in, t, v);
        out.code = static_cast<int32_t>(v);
        break;
      case 2:
        ok = read_bytes(*in, t, out.message);
        break;
      default:  // details (google.protobuf.Any): nobody reads them
        ok = skip_field(*in, t);
    }
    if (!ok) return malformed("response status");
  }
  if (!in->ConsumedEntireMessage()) return malformed("response status");
  return errdefs::Status::Ok();
}

}  // namespace

void encode_frame_header(const FrameHeader& h, char out[kFrameHeaderSize]) {
  auto put32 = [](char* p, uint32_t v) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
  };
  put32(out, h.length);
  put32(out + 4, h.stream_id);
  out[8] = static_cast<char>(h.type);
  out[9] = static_cast<char>(h.flags);
}

FrameHeader decode_frame_header(const char in[kFrameHeaderSize]) {
  auto get32 = [](const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
  };
  return FrameHeader{.length = get32(in),
                     .stream_id = get32(in + 4),
                     .type = static_cast<MessageType>(static_cast<uint8_t>(in[8])),
                     .flags = static_cast<uint8_t>(in[9])};
}

bool known_message_type(uint8_t type) { return type >= 1 && type <= 3; }

size_t encoded_size(const Request& r) {
  size_t n =
      string_field_size(1, r.service) + string_field_size(2, r.method) + string_field_size(3, r.payload);
  if (r.timeout_nano != 0) n += 1 + varint_size(static_cast<uint64_t>(r.timeout_nano));
  for (const auto& kv : r.metadata) n += len_field_size(5, key_value_size(kv));
  return n;
}

void encode_request_append(std::string_view service, std::string_view method, std::string_view payload,
                           int64_t timeout_nano, const Metadata& metadata, std::string& out) {
  put_string(out, 1, service);
  put_string(out, 2, method);
  put_string(out, 3, payload);
  if (timeout_nano != 0) {
    put_varint(out, tag(4, kVarint));
    put_varint(out, static_cast<uint64_t>(timeout_nano));
  }
  for (const auto& kv : metadata) {
    put_varint(out, tag(5, kLen));
    put_varint(out, key_value_size(kv));
    put_string(out, 1, kv.first);
    put_string(out, 2, kv.second);
  }
}

void encode_append(const Request& r, std::string& out) {
  out.reserve(out.size() + encoded_size(r));
  encode_request_append(r.service, r.method, r.payload, r.timeout_nano, r.metadata, out);
}

void encode_append(const Response& r, std::string& out) {
  const size_t status = status_size(r);
  out.reserve(out.size() + len_field_size(1, status) + string_field_size(2, r.payload));
  // The status is always present, as Go's server sends it, even when OK.
  put_varint(out, tag(1, kLen));
  put_varint(out, status);
  if (r.code != 0) {
    put_varint(out, tag(1, kVarint));
    put_varint(out, static_cast<uint64_t>(int64_t{r.code}));
  }
  put_string(out, 2, r.message);
  put_string(out, 2, r.payload);
}

std::string encode(const Request& request) {
  std::string out;
  encode_append(request, out);
  return out;
}

std::string encode(const Response& response) {
  std::string out;
  encode_append(response, out);
  return out;
}

errdefs::Status decode(std::string_view bytes, Request& out) {
  out = Request{};
  std::optional<CodedInputStream> in;
  if (!make_input(bytes, in)) return malformed("request");
  while (uint32_t t = in->ReadTag()) {
    bool ok = false;
    uint64_t v = 0;
    std::string_view sub;
    switch (field_of(t)) {
      case 1:
        ok = read_bytes(*in, t, out.service);
        break;
      case 2:
        ok = read_bytes(*in, t, out.method);
        break;
      case 3:
        ok = read_bytes(*in, t, out.payload);
        break;
      case 4:
        ok = read_varint(*in, t, v);
        out.timeout_nano = static_cast<int64_t>(v);
        break;
      case 5:
        ok = read_submessage(*in, t, sub);
        if (ok) {
          CTRD_RETURN_IF_ERROR(decode_key_value(sub, out.metadata.emplace_back()));
        }
        break;
      default:
        ok = skip_field(*in, t);
    }
    if (!ok) return malformed("request");
  }
  if (!in->ConsumedEntireMessage()) return malformed("request");
  return errdefs::Status::Ok();
}

errdefs::Status decode(std::string_view bytes, Response& out) {
  out = Response{};
  std::optional<CodedInputStream> in;
  if (!make_input(bytes, in)) return malformed("response");
  while (uint32_t t = in->ReadTag()) {
    bool ok = false;
    std::string_view sub;
    switch (field_of(t)) {
      case 1:
        ok = read_submessage(*in, t, sub);
        if (ok) {
          CTRD_RETURN_IF_ERROR(decode_status(sub, out));
        }
        break;
      case 2:
        ok = read_bytes(*in, t, out.payload);
        break;
      default:
        ok = skip_field(*in, t);
    }
    if (!ok) return malformed("response");
  }
  if (!in->ConsumedEntireMessage()) return malformed("response");
  return errdefs::Status::Ok();
}

void append_frame(std::string& out, uint32_t stream_id, MessageType type, std::string_view payload) {
  char header[kFrameHeaderSize];
  encode_frame_header(
      FrameHeader{.length = static_cast<uint32_t>(payload.size()), .stream_id = stream_id, .type = type},
      header);
  out.append(header, kFrameHeaderSize);
  out.append(payload);
}

size_t begin_frame(std::string& out, uint32_t stream_id, MessageType type) {
  const size_t offset = out.size();
  out.resize(offset + kFrameHeaderSize);
  encode_frame_header(FrameHeader{.stream_id = stream_id, .type = type}, out.data() + offset);
  return offset;
}

size_t finish_frame(std::string& out, size_t header_offset) {
  const size_t length = out.size() - header_offset - kFrameHeaderSize;
  FrameHeader header = decode_frame_header(out.data() + header_offset);
  header.length = static_cast<uint32_t>(length);
  encode_frame_header(header, out.data() + header_offset);
  return length;
}

char* FrameDecoder::prepare(size_t min_size) {
  compact();
  if (buffer_.size() - end_ < min_size) buffer_.resize(end_ + min_size);
  return buffer_.data() + end_;
}

void FrameDecoder::commit(size_t n) { end_ += std::min(n, buffer_.size() - end_); }

void FrameDecoder::append(std::string_view bytes) {
  std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
  commit(bytes.size());
}

ssize_t FrameDecoder::receive(int fd) {
  constexpr size_t kChunk = size_t{64} << 10;
  // Only the threads that read connections (the loops) ever allocate it.
  static thread_local const std::unique_ptr<char[]> chunk(new char[kChunk]);
  ssize_t n;
  do {
    n = ::recv(fd, chunk.get(), kChunk, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n > 0) append(std::string_view(chunk.get(), static_cast<size_t>(n)));
  return n;
}

void FrameDecoder::compact() {
  if (begin_ == 0) return;
  if (begin_ != end_) std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  // Give memory back after a large frame; steady small traffic keeps its buffer.
  if (end_ == 0 && buffer_.size() > (size_t{256} << 10)) {
    buffer_.resize(size_t{64} << 10);
    buffer_.shrink_to_fit();
  }
}

errdefs::StatusOr<std::optional<FrameDecoder::Frame>> FrameDecoder::next() {
  if (discard_ > 0) {
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(discard_, end_ - begin_));
    begin_ += skip;
    discard_ -= skip;
    if (discard_ > 0) return std::optional<Frame>();
  }
  if (begin_ == end_ && buffer_.capacity() > 4096) {
    // Everything consumed: let go of what a large frame needed.
    std::string().swap(buffer_);
    begin_ = end_ = 0;
  }
  if (end_ - begin_ < kFrameHeaderSize) return std::optional<Frame>();
  const FrameHeader header = decode_frame_header(buffer_.data() + begin_);
  if (!known_message_type(static_cast<uint8_t>(header.type)))
    return errdefs::InvalidArgument("ttrpc: unknown message type " +
                                    std::to_string(static_cast<unsigned>(header.type)) + " on stream " +
                                    std::to_string(header.stream_id));
  if (header.length > kMaxMessageSize) {
    begin_ += kFrameHeaderSize;
    discard_ = header.length;
    return std::optional<Frame>(Frame{.header = header, .oversized = true});
  }
  if (end_ - begin_ < kFrameHeaderSize + header.length) return std::optional<Frame>();
  Frame frame{.header = header,
              .payload = std::string_view(buffer_.data() + begin_ + kFrameHeaderSize, header.length)};
  begin_ += kFrameHeaderSize + header.length;
  return std::optional<Frame>(frame);
}

int32_t to_grpc_code(errdefs::Code code) {
  using errdefs::Code;
  switch (code) {
    case Code::kOk:
      return 0;
    case Code::kCanceled:
      return 1;
    case Code::kUnknown:
    case Code::kSkip:
      return 2;
    case Code::kInvalidArgument:
      return 3;
    case Code::kDeadlineExceeded:
      return 4;
    case Code::kNotFound:
      return 5;
    case Code::kAlreadyExists:
      return 6;
    case Code::kPermissionDenied:
      return 7;
    case Code::kResourceExhausted:
      return 8;
    case Code::kFailedPrecondition:
      return 9;
    case Code::kAborted:
      return 10;
    case Code::kOutOfRange:
      return 11;
    case Code::kNotImplemented:
      return 12;
    case Code::kInternal:
      return 13;
    case Code::kUnavailable:
      return 14;
    case Code::kDataLoss:
      return 15;
  }
  return 2;
}

errdefs::Code from_grpc_code(int32_t code) {
  using errdefs::Code;
  static constexpr Code kByNumber[] = {Code::kOk,
                                       Code::kCanceled,
                                       Code::kUnknown,
                                       Code::kInvalidArgument,
                                       Code::kDeadlineExceeded,
                                       Code::kNotFound,
                                       Code::kAlreadyExists,
                                       Code::kPermissionDenied,
                                       Code::kResourceExhausted,
                                       Code::kFailedPrecondition,
                                       Code::kAborted,
                                       Code::kOutOfRange,
                                       Code::kNotImplemented,
                                       Code::kInternal,
                                       Code::kUnavailable,
                                       Code::kDataLoss};
  // Unauthenticated (16) and anything newer: no errdefs kind, as in errdefs/grpc_status.
  if (code < 0 || static_cast<size_t>(code) >= std::size(kByNumber)) return Code::kUnknown;
  return kByNumber[code];
}

Response response_from_status(const errdefs::Status& status) {
  return Response{.code = to_grpc_code(status.code()), .message = status.message()};
}

errdefs::Status status_from_response(const Response& response) {
  const errdefs::Code code = from_grpc_code(response.code);
  if (code == errdefs::Code::kOk) return errdefs::Status::Ok();
  return errdefs::Status(code, response.message);
}

}  // namespace ctrd::ttrpc
