// Test helpers for the snapshot tests: whole-file reads and writes. The
// scratch directories themselves are tests/support's TempDir, which unmounts
// whatever a failed test left mounted below it before removing it.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace ctrd::snapshots::testing {

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ctrd::snapshots::testing
