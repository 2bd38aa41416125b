// Runs seed tars through the archive fuzz entry, so its invariants are checked
// in every build. The seeds are built here (no binary files in the repo):
//   archive_corpus_test                  check the built-in seeds
//   archive_corpus_test DIR              ... and every file in DIR
//   archive_corpus_test --write-seeds DIR  write the seeds to DIR, for the fuzzer
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "archive_fuzz_entry.h"
#include "archive_test_util.h"

namespace {

using ctrd::archive::testing::TarBuilder;
using ctrd::archive::testing::TarMeta;

std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  {
    TarBuilder t;
    t.dir("etc/", TarMeta{.mode = 0750, .uid = 3})
        .file("etc/passwd", "root:x:0:0\n", TarMeta{.mode = 04755, .xattrs = {{"user.a", "b"}}})
        .symlink("etc/l", "passwd")
        .hardlink("etc/h", "etc/passwd")
        .node("dev/null", AE_IFCHR, 1, 3)
        .node("p", AE_IFIFO, 0, 0);
    out.emplace_back("kinds.tar", t.take());
  }
  {
    TarBuilder t;
    t.file("../escape", "x")
        .file("/abs", "x")
        .symlink("up", "../..")
        .file("up/outside/sentinel", "x")
        .symlink("slash", "/")
        .file("slash/tmp/escape", "x")
        .hardlink("h", "../outside/sentinel")
        .whiteout("../.wh.outside");
    out.emplace_back("escapes.tar", t.take());
  }
  {
    TarBuilder t;
    t.dir("d/")
        .file("d/a", "a")
        .whiteout("d/.wh.a")
        .whiteout("d/.wh..wh..opq")
        .whiteout(".wh.d")
        .hardlink("bin/alias", "bin/tool");
    out.emplace_back("whiteouts.tar", t.take());
  }
  {
    TarBuilder t;
    t.file("f", "data").dir("f/").file("f/x", "y").symlink("f", "f/x");
    out.emplace_back("replace.tar", t.take());
  }
  out.emplace_back("empty.tar", "");
  out.emplace_back("garbage.tar", std::string(700, '\x07'));
  return out;
}

void run(const std::string& data) {
  ctrd::archive::fuzz::run_one_input(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    std::filesystem::create_directories(argv[2]);
    for (const auto& [name, data] : seeds())
      std::ofstream(std::string(argv[2]) + "/" + name, std::ios::binary) << data;
    return 0;
  }
  size_t count = 0;
  for (const auto& [name, data] : seeds()) {
    run(data);
    // Truncations of each seed reach the error paths mid-entry.
    for (size_t cut = 1; cut < data.size(); cut += 97) run(data.substr(0, cut));
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
  std::printf("%zu archive corpus inputs passed\n", count);
  return 0;
}
