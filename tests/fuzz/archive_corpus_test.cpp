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
#include "corpus_main.h"

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
  // Truncations of each seed reach the error paths mid-entry.
  return ctrd::fuzz::corpus_main(argc, argv, "archive", seeds(), 97, run);
}
