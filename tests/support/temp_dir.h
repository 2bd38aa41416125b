// tests/support: what tests of every kind share — a temporary directory that
// is removed whatever happens (mounts below it detached first), the mounts
// below a directory, and a bounded poll. Unit tests, integration tests and the
// benchmarks link it as ctrd_test_support.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace ctrd::testing {

// A fresh directory, removed with everything below it on destruction.
class TempDir {
 public:
  // Under the system's temporary directory (/tmp).
  TempDir();
  // Under `parent`, e.g. trusted_temp_parent().
  explicit TempDir(const std::filesystem::path& parent);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() as a string, and a name below it.
  std::string str() const { return path_.string(); }
  std::string sub(std::string_view name) const { return (path_ / name).string(); }
  // sub(name), created with any missing parents, for tests that need it to exist.
  std::string mkdir(std::string_view name) const;

 private:
  std::filesystem::path path_;
};

// A parent for temporary directories whose whole chain only root can write
// to (unlike /tmp): the daemon loads or executes code only from such places.
std::filesystem::path trusted_temp_parent();

// Mount points at or below `dir`, from /proc/self/mountinfo.
std::vector<std::string> mounts_below(const std::filesystem::path& dir);
// Detaches every mount at or below `dir` (deepest first).
void unmount_below(const std::filesystem::path& dir);

// Calls `done` until it is true or `timeout` has passed; whether it became true.
template <typename Pred>
bool poll_until(Pred done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace ctrd::testing
