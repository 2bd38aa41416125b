#include <cstddef>
#include <cstdint>

#include "ttrpc_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ctrd::ttrpc::fuzz::run_one_input(data, size);
}
