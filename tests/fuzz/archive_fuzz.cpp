#include <cstddef>
#include <cstdint>

#include "archive_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ctrd::archive::fuzz::run_one_input(data, size);
}
