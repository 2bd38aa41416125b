// writer: the local content store's Writer — appends to an ingest's `data`
// file while hashing the same bytes, and on commit renames the file into
// blobs/ once size and digest check out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "content/content.h"
#include "content/local/ingest.h"
#include "digest/sha256.h"
#include "errdefs/errdefs.h"
#include "os/unique_fd.h"

namespace ctrd::content::local {

using digest::Sha256;
using os::UniqueFd;

struct OpenIngest {
  IngestPaths paths;
  std::string blobs_dir;  // <root>/blobs/sha256
  UniqueFd data;          // read-write, so resume and truncate can re-hash
  Sha256 hasher;          // state after `status.offset` bytes
  Status status;
  RefLock lock;
};

class LocalWriter final : public Writer {
 public:
  explicit LocalWriter(OpenIngest ingest);
  // Leaves the ingest resumable: syncs what was written and records updatedat.
  ~LocalWriter() override;

  errdefs::Status write(std::string_view data) override;
  std::string digest() override;
  errdefs::StatusOr<Status> status() override;
  // Any size up to the current offset; the digest is recomputed from disk.
  errdefs::Status truncate(int64_t size) override;
  // Closes the writer whatever the outcome, as containerd does; on failure the
  // ingest stays and a new writer for the ref resumes it.
  errdefs::Status commit(int64_t size, std::string_view expected, const Labels& labels) override;

 private:
  errdefs::Status check_open() const;
  void close_resumable();
  void remove_ingest_dir();
  // Starts writeback of full chunks so the fsync at commit has little left.
  void start_writeback();

  OpenIngest ingest_;
  int64_t writeback_started_to_ = 0;
};

// Re-hashes `fd` from the start up to `limit` bytes (or its end when
// negative); returns the number of bytes hashed.
errdefs::StatusOr<int64_t> hash_file(int fd, Sha256& hasher, int64_t limit = -1);

}  // namespace ctrd::content::local
