// ttrpc/wire: ttRPC's bytes on the socket — the 10-byte frame header, an
// incremental frame decoder that never buffers more than one frame, and the
// protobuf encoding of ttrpc.Request / ttrpc.Response (hand-written: two tiny
// messages do not justify a generated target). Pure functions, no I/O, so the
// fuzzer drives exactly what the client and server run.
#pragma once

#include <sys/types.h>
#include <cstddef>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::ttrpc {

using Metadata = std::vector<std::pair<std::string, std::string>>;

inline constexpr size_t kFrameHeaderSize = 10;
// Larger frames are refused by every ttRPC peer (Go's messageLengthMax).
inline constexpr uint32_t kMaxMessageSize = 4u << 20;

enum class MessageType : uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

// Flags are only meaningful on streams (ttRPC >= 1.2); kept for completeness.
inline constexpr uint8_t kFlagRemoteClosed = 0x01;
inline constexpr uint8_t kFlagRemoteOpen = 0x02;
inline constexpr uint8_t kFlagNoData = 0x04;

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  MessageType type = MessageType::kRequest;
  uint8_t flags = 0;

  bool operator==(const FrameHeader&) const = default;
};

void encode_frame_header(const FrameHeader& header, char out[kFrameHeaderSize]);
// Any 10 bytes decode; an unknown type is reported by FrameDecoder, not here.
FrameHeader decode_frame_header(const char in[kFrameHeaderSize]);
bool known_message_type(uint8_t type);

struct Request {
  std::string service;
  std::string method;
  std::string payload;
  int64_t timeout_nano = 0;
  Metadata metadata;

  bool operator==(const Request&) const = default;
};

// google.rpc.Status is flattened in: ttRPC peers only ever read its code and
// message (details are skipped on decode and never sent).
struct Response {
  int32_t code = 0;  // a gRPC status code
  std::string message;
  std::string payload;

  bool operator==(const Response&) const = default;
};

size_t encoded_size(const Request& request);
// Appends the encoding to `out`, so a caller can put a header in front and
// reuse one buffer for every call.
void encode_append(const Request& request, std::string& out);
// The same encoding from borrowed parts, so a client call copies its payload
// only once, into the frame.
void encode_request_append(std::string_view service, std::string_view method, std::string_view payload,
                           int64_t timeout_nano, const Metadata& metadata, std::string& out);
void encode_append(const Response& response, std::string& out);
std::string encode(const Request& request);
std::string encode(const Response& response);

// InvalidArgument naming what is malformed; never reads past `bytes`.
errdefs::Status decode(std::string_view bytes, Request& out);
errdefs::Status decode(std::string_view bytes, Response& out);

// Appends one whole frame (header + payload) to `out`.
void append_frame(std::string& out, uint32_t stream_id, MessageType type, std::string_view payload);
// Appends a frame header whose length is filled in by finish_frame(), once the
// message has been encoded after it; returns the header's offset.
size_t begin_frame(std::string& out, uint32_t stream_id, MessageType type);
// The payload's size (everything after the header), which may exceed kMaxMessageSize.
size_t finish_frame(std::string& out, size_t header_offset);

// Splits a byte stream into frames. Bytes go in through prepare()/commit()
// (so a socket read lands in place), frames come out of next(). A frame over
// kMaxMessageSize is reported at once with `oversized` set and its payload is
// then skipped as it arrives, without being stored.
class FrameDecoder {
 public:
  struct Frame {
    FrameHeader header;
    bool oversized = false;
    // Valid until the next prepare() or next().
    std::string_view payload;
  };

  // Room for at least `min_size` more bytes; write into it, then commit().
  char* prepare(size_t min_size);
  void commit(size_t n);
  void append(std::string_view bytes);
  // One recv(2) of up to 64 KiB from `fd` (MSG_DONTWAIT, retried on EINTR)
  // into a buffer shared by the calling thread's connections; what came is
  // appended. recv's result, errno set when it is -1. An idle connection so
  // holds only an unfinished frame, not a read-sized buffer.
  ssize_t receive(int fd);

  // The next complete frame, nullopt when more bytes are needed, or an error
  // when the stream is not ttRPC (an unknown message type): nothing after it
  // can be trusted, so the connection should be closed.
  errdefs::StatusOr<std::optional<Frame>> next();

  // Bytes held for a frame not yet complete; bounded by one frame.
  size_t buffered() const { return end_ - begin_; }

 private:
  void compact();

  std::string buffer_;
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last committed byte
  uint64_t discard_ = 0;
};

// gRPC status code numbers <-> ctrd's error kinds (no gRPC dependency here).
int32_t to_grpc_code(errdefs::Code code);
errdefs::Code from_grpc_code(int32_t code);
Response response_from_status(const errdefs::Status& status);
errdefs::Status status_from_response(const Response& response);

}  // namespace ctrd::ttrpc
