// Test helpers: a scratch directory that unmounts whatever is left mounted
// below it and removes itself, even when a test fails half-way.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ctrd::snapshots::testing {

inline std::vector<std::string> mount_points() {
  std::vector<std::string> points;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    points.push_back(mount_point);
  }
  return points;
}

inline bool is_mounted(const std::string& path) {
  auto points = mount_points();
  return std::find(points.begin(), points.end(), path) != points.end();
}

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ctrd-snap-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    if (path_.empty()) return;
    std::vector<std::string> below;
    for (auto& p : mount_points()) {
      if (p.starts_with(path_)) below.push_back(p);
    }
    std::sort(below.begin(), below.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& m : below) ::umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const {
    std::string p = path_ + "/" + name;
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

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
