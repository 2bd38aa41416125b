#include "content/local/ingest.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "content/local/files.h"
#include "digest/sha256.h"

namespace ctrd::content::local {

using digest::Sha256;

IngestPaths IngestPaths::for_ref(const std::string& ingest_root, std::string_view ref) {
  return in_dir(ingest_root + "/" + Sha256::hex_of(ref));
}

IngestPaths IngestPaths::in_dir(std::string dir) {
  IngestPaths paths;
  paths.dir = std::move(dir);
  paths.data = paths.dir + "/data";
  paths.ref = paths.dir + "/ref";
  paths.started_at = paths.dir + "/startedat";
  paths.updated_at = paths.dir + "/updatedat";
  paths.total = paths.dir + "/total";
  return paths;
}

namespace {

std::optional<Clock::time_point> read_timestamp(const std::string& path) {
  auto text = read_small_file(path);
  if (!text.ok()) return std::nullopt;
  return parse_timestamp(*text);
}

// A missing or corrupt `total` means "unknown", as in containerd.
int64_t read_total(const std::string& path) {
  auto text = read_small_file(path);
  if (!text.ok()) return 0;
  int64_t total = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), total);
  if (ec != std::errc() || end != text->data() + text->size() || total < 0) return 0;
  return total;
}

}  // namespace

errdefs::StatusOr<Status> read_ingest_status(const IngestPaths& paths) {
  struct stat st {};
  if (::stat(paths.data.c_str(), &st) != 0) return errdefs::FromErrno(errno, "stat " + paths.data);
  CTRD_ASSIGN_OR_RETURN(std::string ref, read_small_file(paths.ref));

  const Clock::time_point modified = to_time_point(st.st_mtim);
  Status status;
  status.ref = std::move(ref);
  status.offset = static_cast<int64_t>(st.st_size);
  status.total = read_total(paths.total);
  status.started_at = read_timestamp(paths.started_at).value_or(modified);
  status.updated_at = std::max(read_timestamp(paths.updated_at).value_or(modified), modified);
  return status;
}

namespace {

class RefLockTable {
 public:
  static RefLockTable& instance() {
    // Leaked on purpose: writers may outlive static destruction at exit.
    static auto* table = new RefLockTable;
    return *table;
  }

  errdefs::Status acquire(const std::string& key, std::string_view ref, std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    auto free = [&] { return !held_since_.contains(key); };
    if (!free() && !released_.wait_for(lock, wait, free)) {
      Clock::time_point since = held_since_.at(key);
      auto held_for = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since);
      return errdefs::Unavailable("ref " + std::string(ref) + " locked for " +
                                  std::to_string(held_for.count()) + "ms (since " + format_timestamp(since) +
                                  ")");
    }
    held_since_.emplace(key, Clock::now());
    return errdefs::Status::Ok();
  }

  void release(const std::string& key) {
    {
      std::lock_guard lock(mu_);
      held_since_.erase(key);
    }
    released_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable released_;
  std::unordered_map<std::string, Clock::time_point> held_since_;
};

}  // namespace

RefLock::~RefLock() { release(); }

RefLock::RefLock(RefLock&& other) noexcept : key_(std::exchange(other.key_, std::string())) {}

RefLock& RefLock::operator=(RefLock&& other) noexcept {
  if (this != &other) {
    release();
    key_ = std::exchange(other.key_, std::string());
  }
  return *this;
}

errdefs::StatusOr<RefLock> RefLock::acquire(const std::string& key, std::string_view ref,
                                            std::chrono::milliseconds wait) {
  CTRD_RETURN_IF_ERROR(RefLockTable::instance().acquire(key, ref, wait));
  return RefLock(key);
}

void RefLock::release() {
  if (!key_.empty()) RefLockTable::instance().release(std::exchange(key_, std::string()));
}

}  // namespace ctrd::content::local
