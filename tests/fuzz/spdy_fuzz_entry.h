// The one entry shared by the spdy libFuzzer target and its seed test: feeds
// the input to the SPDY/3.1 frame reader and every header block to a
// session's decompressor, as a peer's bytes would arrive, and aborts when an
// invariant breaks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctrd::spdy::fuzz {

// The first byte picks the read size the bytes are split into; the rest is
// the stream. Aborts when the reader holds more than one frame's worth of
// bytes, an error has no message or the wrong code, a header block inflates
// past the limit without being refused, or a decoded block does not survive
// compression and decompression. Returns 0.
int run_one_input(const uint8_t* data, size_t size);

}  // namespace ctrd::spdy::fuzz
