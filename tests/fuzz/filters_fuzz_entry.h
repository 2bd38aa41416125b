// The one entry shared by the libFuzzer target and the seed-corpus test, so that
// every build checks the corpus with the same invariants the fuzzer enforces.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctrd::filters::fuzz {

// Parses `data` as a filter text (and its lines as parse_all texts), matches what
// parses against fixed objects and aborts when an invariant breaks. Returns 0.
int run_one_input(const uint8_t* data, size_t size);

}  // namespace ctrd::filters::fuzz
