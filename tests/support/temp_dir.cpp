#include "support/temp_dir.h"

#include <stdlib.h>
#include <sys/mount.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ctrd::testing {

TempDir::TempDir() : TempDir(std::filesystem::temp_directory_path()) {}

TempDir::TempDir(const std::filesystem::path& parent) {
  std::string tmpl = (parent / "ctrd-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("mkdtemp in " + parent.string() + " failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  // A test that failed half-way may leave something mounted below: removing
  // through a mount would delete what it shows, so unmount first.
  unmount_below(path_);
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::mkdir(std::string_view name) const {
  std::string dir = sub(name);
  std::filesystem::create_directories(dir);
  return dir;
}

std::filesystem::path trusted_temp_parent() { return "/run"; }

std::vector<std::string> mounts_below(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  const std::string prefix = dir.string() + "/";
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    if (mount_point == dir.string() || mount_point.rfind(prefix, 0) == 0) out.push_back(mount_point);
  }
  return out;
}

void unmount_below(const std::filesystem::path& dir) {
  auto targets = mounts_below(dir);
  std::sort(targets.begin(), targets.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& t : targets) ::umount2(t.c_str(), MNT_DETACH);
}

}  // namespace ctrd::testing
