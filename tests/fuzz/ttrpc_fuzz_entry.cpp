#include "ttrpc_fuzz_entry.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ttrpc/wire.h"

namespace ctrd::ttrpc::fuzz {
namespace {

[[noreturn]] void fail(std::string_view what) {
  std::fprintf(stderr, "ttrpc fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

template <typename Message>
void check_round_trip(std::string_view payload) {
  Message first;
  const errdefs::Status status = decode(payload, first);
  if (!status.ok()) {
    if (status.code() != errdefs::Code::kInvalidArgument || status.message().empty())
      fail("a decode error that is not InvalidArgument with a message");
    return;
  }
  Message second;
  if (!decode(encode(first), second).ok()) fail("a decoded message does not decode after encoding");
  if (!(first == second)) fail("a decoded message changes in an encode/decode round trip");
}

void check_frame(const FrameDecoder::Frame& frame) {
  if (frame.oversized) {
    if (frame.header.length <= kMaxMessageSize) fail("a frame within the limit reported as oversized");
    if (!frame.payload.empty()) fail("an oversized frame with a payload");
    return;
  }
  if (frame.header.length > kMaxMessageSize) fail("an oversized frame delivered");
  if (frame.payload.size() != frame.header.length) fail("payload size differs from the header's length");
  // Either side may receive any frame; both decoders see every payload.
  check_round_trip<Request>(frame.payload);
  check_round_trip<Response>(frame.payload);
}

}  // namespace

int run_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = size_t{data[0]} + 1;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  FrameDecoder decoder;
  while (!rest.empty()) {
    const size_t n = std::min(chunk, rest.size());
    decoder.append(rest.substr(0, n));
    rest.remove_prefix(n);
    if (decoder.buffered() > kFrameHeaderSize + kMaxMessageSize + chunk) fail("the decoder holds too much");
    while (true) {
      auto frame = decoder.next();
      if (!frame.ok()) {
        if (frame.status().message().empty()) fail("a stream error without a message");
        return 0;  // the connection would be closed here
      }
      if (!frame->has_value()) break;
      check_frame(**frame);
    }
  }
  return 0;
}

}  // namespace ctrd::ttrpc::fuzz
