// ingest: the on-disk shape of an active ingest in the local content store and
// the in-process lock that lets only one Writer use it at a time.
//
//   <root>/ingest/<sha256 hex of ref>/data       the bytes written so far
//                                     ref        the ref, to tell hash collisions
//                                     startedat  RFC 3339, set when created
//                                     updatedat  RFC 3339, refreshed on close
//                                     total      expected size, absent when unknown
//
// The same layout as containerd's, so an operator (or either daemon) recognises
// and resumes it. `data` is created last: an ingest without it is incomplete
// and gets recreated.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::content::local {

struct IngestPaths {
  std::string dir;
  std::string data;
  std::string ref;
  std::string started_at;
  std::string updated_at;
  std::string total;

  // Hashing the ref keeps directory names fixed-length and free of client-chosen
  // path characters.
  static IngestPaths for_ref(const std::string& ingest_root, std::string_view ref);
  static IngestPaths in_dir(std::string dir);
};

// Reads an ingest's state. NotFound when the directory, `data` or `ref` is
// missing. Unreadable timestamps fall back to `data`'s mtime rather than
// losing the ingest, and `updated_at` is never older than that mtime because
// writes do not refresh the `updatedat` file.
errdefs::StatusOr<Status> read_ingest_status(const IngestPaths& paths);

// Holds a ref's ingest exclusively until destroyed.
class RefLock {
 public:
  RefLock() = default;
  ~RefLock();
  RefLock(RefLock&& other) noexcept;
  RefLock& operator=(RefLock&& other) noexcept;
  RefLock(const RefLock&) = delete;
  RefLock& operator=(const RefLock&) = delete;

  // Waits up to `wait` for another holder of `key` to release it; Unavailable
  // ("ref <ref> locked ...") when it does not. Keys are process-wide so two
  // store objects on one root still exclude each other.
  static errdefs::StatusOr<RefLock> acquire(const std::string& key, std::string_view ref,
                                            std::chrono::milliseconds wait);

  void release();

 private:
  explicit RefLock(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace ctrd::content::local
