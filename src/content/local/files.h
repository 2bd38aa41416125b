// files: the POSIX file handling the local content store is built on — full
// pread/pwrite loops, small metadata files replaced durably, directory fsync,
// stat times, and timestamps in the RFC 3339 form containerd writes to its
// ingest directories (so either daemon can resume the other's ingests).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "os/unique_fd.h"

namespace ctrd::content::local {

using os::UniqueFd;

// open(2) with O_CLOEXEC; the error names `path`.
errdefs::StatusOr<UniqueFd> open_file(const std::string& path, int flags, mode_t mode = 0);

// Reads a small file whole.
errdefs::StatusOr<std::string> read_small_file(const std::string& path);

// Replaces `path` with `contents` so that after a crash it holds either the old
// or the new contents, never a torn mix: a synced temporary renamed over it.
errdefs::Status write_file_durably(const std::string& path, std::string_view contents);

// Makes renames and creations inside `dir` durable.
errdefs::Status sync_directory(const std::string& dir);

// Writes all of `data` at `offset`, retrying short writes. `written` receives
// the count that reached the file even when an error stops it partway.
errdefs::Status write_all_at(int fd, std::string_view data, int64_t offset, size_t& written);

// Reads until `n` bytes or end of file; returns the count.
errdefs::StatusOr<size_t> read_full_at(int fd, char* buf, size_t n, int64_t offset);

Clock::time_point to_time_point(const struct timespec& ts);

// RFC 3339 in UTC with nanoseconds and trailing zeros trimmed (Go's
// RFC3339Nano), e.g. "2024-05-06T07:08:09.123456789Z".
std::string format_timestamp(Clock::time_point t);
// Accepts RFC 3339 with any fraction and a "Z" or "+hh:mm" offset.
std::optional<Clock::time_point> parse_timestamp(std::string_view text);

}  // namespace ctrd::content::local
