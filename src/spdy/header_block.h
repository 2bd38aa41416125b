// spdy/header_block: the name/value header blocks of SYN_STREAM, SYN_REPLY
// and HEADERS frames. Each direction of a session is one zlib stream primed
// with SPDY/3's dictionary, so a compressor or decompressor lives as long as
// its session and sees every block in order. Decompression is bounded: a
// block that inflates past the limit (a compression bomb) is an error before
// the memory is spent.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::spdy {

// Names are lower case; a value may hold several, separated by NUL bytes.
using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

// The value of `name` in `headers`, or "" when absent.
std::string_view header_value(const HeaderPairs& headers, std::string_view name);

// SPDY/3's zlib dictionary (1423 bytes, Adler-32 0xe3c6a7c2): 65 common
// header names and values, each with a 32-bit length before it, then a run
// of status texts, dates and media types.
std::string_view header_dictionary();

// The uncompressed form: a 32-bit count, then each name and value with a
// 32-bit length before it. Exposed for tests and the fuzzer.
std::string encode_pairs(const HeaderPairs& headers);
errdefs::StatusOr<HeaderPairs> decode_pairs(std::string_view block);

class HeaderCompressor {
 public:
  // Fails only when zlib cannot allocate.
  static errdefs::StatusOr<std::unique_ptr<HeaderCompressor>> create();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;

  errdefs::StatusOr<std::string> compress(const HeaderPairs& headers);

 private:
  HeaderCompressor() = default;
  z_stream zs_{};
};

class HeaderDecompressor {
 public:
  // A block inflating past `max_decoded_size` is ResourceExhausted.
  static errdefs::StatusOr<std::unique_ptr<HeaderDecompressor>> create(size_t max_decoded_size = 64 * 1024);
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;

  // After an error the stream is out of step: the session must end.
  errdefs::StatusOr<HeaderPairs> decompress(std::string_view block);

 private:
  explicit HeaderDecompressor(size_t max_decoded_size) : max_decoded_size_(max_decoded_size) {}
  z_stream zs_{};
  const size_t max_decoded_size_;
};

}  // namespace ctrd::spdy
