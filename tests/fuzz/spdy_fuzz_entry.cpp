#include "spdy_fuzz_entry.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "spdy/frame.h"
#include "spdy/header_block.h"

namespace ctrd::spdy::fuzz {
namespace {

constexpr uint32_t kMaxFrame = 64 * 1024;
constexpr size_t kMaxDecoded = 16 * 1024;

[[noreturn]] void fail(std::string_view what) {
  std::fprintf(stderr, "spdy fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

std::string_view header_block_of(const Frame& frame) {
  if (auto* f = std::get_if<SynStream>(&frame)) return f->header_block;
  if (auto* f = std::get_if<SynReply>(&frame)) return f->header_block;
  if (auto* f = std::get_if<Headers>(&frame)) return f->header_block;
  return {};
}

bool has_header_block(const Frame& frame) {
  return std::holds_alternative<SynStream>(frame) || std::holds_alternative<SynReply>(frame) ||
         std::holds_alternative<Headers>(frame);
}

// A decoded block compresses and decompresses back to itself.
void check_round_trip(const HeaderPairs& pairs) {
  auto compressor = HeaderCompressor::create();
  auto decompressor = HeaderDecompressor::create(size_t{1} << 30);
  if (!compressor.ok() || !decompressor.ok()) fail("zlib state could not be made");
  auto block = (*compressor)->compress(pairs);
  if (!block.ok()) fail("a decoded header block does not compress");
  auto again = (*decompressor)->decompress(*block);
  if (!again.ok() || *again != pairs) fail("a header block changes in a compress/decompress round trip");
}

}  // namespace

int run_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = size_t{data[0]} + 1;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  FrameReader reader(kMaxFrame);
  auto decompressor = HeaderDecompressor::create(kMaxDecoded);
  if (!decompressor.ok()) fail("zlib state could not be made");
  bool headers_broken = false;  // after a bad block the session would have ended
  while (!rest.empty()) {
    const size_t n = std::min(chunk, rest.size());
    reader.append(rest.substr(0, n));
    rest.remove_prefix(n);
    if (reader.buffered() > kFrameHeaderSize + kMaxFrame + chunk) fail("the reader holds too much");
    while (true) {
      auto frame = reader.next();
      if (!frame.ok()) {
        if (frame.status().message().empty()) fail("a stream error without a message");
        const auto code = frame.status().code();
        if (code != errdefs::Code::kInvalidArgument && code != errdefs::Code::kResourceExhausted)
          fail("a stream error that is neither InvalidArgument nor ResourceExhausted");
        return 0;  // the connection would be closed here
      }
      if (!frame->has_value()) break;
      if (auto* d = std::get_if<DataFrame>(&**frame); d != nullptr && d->data.size() > kMaxFrame)
        fail("a data frame over the limit delivered");
      if (headers_broken || !has_header_block(**frame)) continue;
      auto pairs = (*decompressor)->decompress(header_block_of(**frame));
      if (!pairs.ok()) {
        if (pairs.status().message().empty()) fail("a header block error without a message");
        headers_broken = true;
        continue;
      }
      size_t decoded = 4;
      for (const auto& [k, v] : *pairs) decoded += 8 + k.size() + v.size();
      if (decoded > kMaxDecoded) fail("a header block over the limit decoded");
      check_round_trip(*pairs);
    }
  }
  return 0;
}

}  // namespace ctrd::spdy::fuzz
