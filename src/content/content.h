// content: the content-addressed blob store interface (containerd's content.Store).
//
// Blobs are immutable and named by digest ("sha256:<hex>"). New blobs arrive
// through a Writer opened by ref: an ingest that survives restarts and resumes
// at its stored offset, verified on commit. The local store (content/local)
// implements this on disk; the metadata store wraps it with per-namespace views,
// labels and leases.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::content {

using Clock = std::chrono::system_clock;
using Labels = std::map<std::string, std::string>;

// What a piece of content is: its media type, digest and size (OCI's
// descriptor), as image targets, layers and diff results carry it.
struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  bool operator==(const Descriptor&) const = default;
};

struct Info {
  std::string digest;
  int64_t size = 0;
  Clock::time_point created_at;
  Clock::time_point updated_at;
  Labels labels;
};

// State of an active ingest.
struct Status {
  std::string ref;
  int64_t offset = 0;
  int64_t total = 0;     // expected size, 0 when unknown
  std::string expected;  // expected digest, empty when unknown
  Clock::time_point started_at;
  Clock::time_point updated_at;
};

// Random access to a committed blob. Safe to call read_at from several threads.
class ReaderAt {
 public:
  virtual ~ReaderAt() = default;
  // Reads up to `n` bytes at `offset` into `buf`; returns the count (0 at end).
  virtual errdefs::StatusOr<size_t> read_at(char* buf, size_t n, int64_t offset) = 0;
  virtual int64_t size() const = 0;
};

// An open ingest. Only one Writer per ref is open at a time.
class Writer {
 public:
  virtual ~Writer() = default;  // closes without committing; the ingest stays resumable
  virtual errdefs::Status write(std::string_view data) = 0;
  // Digest of everything written so far.
  virtual std::string digest() = 0;
  virtual errdefs::StatusOr<Status> status() = 0;
  // Discards what was written: the ingest restarts at offset 0.
  virtual errdefs::Status truncate(int64_t size) = 0;
  // Verifies `size` (when > 0) and `expected` digest (when non-empty), then makes
  // the blob visible atomically. A mismatch is FailedPrecondition naming both
  // values; a blob already present is AlreadyExists (the ingest is removed).
  virtual errdefs::Status commit(int64_t size, std::string_view expected, const Labels& labels) = 0;
};

struct WriterOptions {
  std::string ref;       // required
  int64_t total = 0;     // expected size, 0 when unknown
  std::string expected;  // expected digest, empty when unknown
};

class Store {
 public:
  virtual ~Store() = default;
  virtual errdefs::StatusOr<Info> info(std::string_view digest) = 0;
  // Updates the fields named by `fieldpaths` ("labels", "labels.<key>"); all
  // labels when empty.
  virtual errdefs::StatusOr<Info> update(const Info& info, const std::vector<std::string>& fieldpaths) = 0;
  // Calls `fn` for each blob matching any of `filters` (all when empty); stops
  // at the first error `fn` returns and returns it.
  virtual errdefs::Status walk(const std::function<errdefs::Status(const Info&)>& fn,
                               const std::vector<std::string>& filters) = 0;
  virtual errdefs::Status remove(std::string_view digest) = 0;
  virtual errdefs::StatusOr<std::unique_ptr<ReaderAt>> reader_at(std::string_view digest) = 0;

  virtual errdefs::StatusOr<Status> status(std::string_view ref) = 0;
  virtual errdefs::StatusOr<std::vector<Status>> list_statuses(const std::vector<std::string>& filters) = 0;
  virtual errdefs::Status abort(std::string_view ref) = 0;
  virtual errdefs::StatusOr<std::unique_ptr<Writer>> writer(const WriterOptions& options) = 0;
};

// Checks "sha256:<64 lowercase hex>"; InvalidArgument naming the value otherwise.
errdefs::Status validate_digest(std::string_view digest);

}  // namespace ctrd::content
