// The one entry shared by the archive libFuzzer target and its seed test:
// applies the input as a layer tar and aborts if anything outside the root
// it was applied to changed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctrd::archive::fuzz {

// Applies `data` as an uncompressed tar to a fresh root (once with each
// whiteout mode) inside a fresh temp dir holding a sentinel tree and a lower
// layer; aborts when the sentinel, the lower or the temp dir itself changed,
// or when a successful apply reports a wrong digest or size. Returns 0.
int run_one_input(const uint8_t* data, size_t size);

}  // namespace ctrd::archive::fuzz
