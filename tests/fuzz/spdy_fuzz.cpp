#include <cstddef>
#include <cstdint>

#include "spdy_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ctrd::spdy::fuzz::run_one_input(data, size);
}
