// The one entry shared by the ttrpc libFuzzer target and its seed test: feeds
// the input to ttRPC's frame decoder and message decoders, as a peer's bytes
// would arrive, and aborts when an invariant breaks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctrd::ttrpc::fuzz {

// The first byte picks the read size the bytes are split into; the rest is
// the stream. Aborts when a frame's payload disagrees with its header, the
// decoder holds more than one frame's worth of bytes, or a message that
// decoded does not survive an encode/decode round trip. Returns 0.
int run_one_input(const uint8_t* data, size_t size);

}  // namespace ctrd::ttrpc::fuzz
