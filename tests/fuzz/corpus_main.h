// corpus_main: the seed-replay program every fuzz target has, run in every
// build: each seed and its truncations (which reach the error paths
// mid-record), then the files of an optional corpus directory.
// `--write-seeds DIR` writes the seeds out for a fuzzing run instead.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace ctrd::fuzz {

using Seeds = std::vector<std::pair<std::string, std::string>>;

inline int corpus_main(int argc, char** argv, const char* what, const Seeds& seeds, size_t truncation_step,
                       const std::function<void(const std::string&)>& run) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    std::filesystem::create_directories(argv[2]);
    for (const auto& [name, data] : seeds)
      std::ofstream(std::string(argv[2]) + "/" + name, std::ios::binary) << data;
    return 0;
  }
  size_t count = 0;
  for (const auto& [name, data] : seeds) {
    run(data);
    for (size_t cut = 1; cut < data.size(); cut += truncation_step) run(data.substr(0, cut));
    ++count;
  }
  if (argc == 2) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1], error)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      run(std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()});
      ++count;
    }
    if (error) {
      std::fprintf(stderr, "cannot read %s\n", argv[1]);
      return 1;
    }
  }
  std::printf("%zu %s corpus inputs passed\n", count, what);
  return 0;
}

}  // namespace ctrd::fuzz
