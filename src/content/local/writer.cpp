#include "content/local/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "content/local/files.h"
#include "log/log.h"
#include "os/dirs.h"

namespace ctrd::content::local {
namespace {

constexpr size_t kHashBufferSize = 1 << 20;
constexpr int64_t kWritebackChunk = 16 << 20;
// Read-only, and only for the daemon (containerd clears the write bits of 0644: 0444).
constexpr mode_t kBlobMode = 0400;

}  // namespace

errdefs::StatusOr<int64_t> hash_file(int fd, Sha256& hasher, int64_t limit) {
  auto buf = std::make_unique_for_overwrite<char[]>(kHashBufferSize);
  int64_t offset = 0;
  for (;;) {
    size_t want = kHashBufferSize;
    if (limit >= 0) {
      if (offset >= limit) break;
      want = static_cast<size_t>(std::min<int64_t>(limit - offset, kHashBufferSize));
    }
    CTRD_ASSIGN_OR_RETURN(size_t got, read_full_at(fd, buf.get(), want, offset));
    hasher.update(std::string_view(buf.get(), got));
    offset += static_cast<int64_t>(got);
    if (got < want) break;
  }
  return offset;
}

LocalWriter::LocalWriter(OpenIngest ingest) : ingest_(std::move(ingest)) {
  writeback_started_to_ = ingest_.status.offset;
}

LocalWriter::~LocalWriter() { close_resumable(); }

errdefs::Status LocalWriter::check_open() const {
  if (!ingest_.data.valid()) {
    return errdefs::FailedPrecondition("writer for ref " + ingest_.status.ref + " is closed");
  }
  return errdefs::Status::Ok();
}

errdefs::Status LocalWriter::write(std::string_view data) {
  CTRD_RETURN_IF_ERROR(check_open());
  size_t written = 0;
  errdefs::Status result = write_all_at(ingest_.data.get(), data, ingest_.status.offset, written);
  // Hash exactly what reached the file, so digest and data stay in step even
  // after a failed write (e.g. a full disk).
  ingest_.hasher.update(data.substr(0, written));
  ingest_.status.offset += static_cast<int64_t>(written);
  ingest_.status.updated_at = Clock::now();
  if (!result.ok()) return result.with_context("write ingest " + ingest_.status.ref);
  start_writeback();
  return errdefs::Status::Ok();
}

void LocalWriter::start_writeback() {
  const int64_t offset = ingest_.status.offset;
  if (offset - writeback_started_to_ < kWritebackChunk) return;
  // Advisory only: a failure here just leaves more work for the final fsync.
  (void)::sync_file_range(ingest_.data.get(), writeback_started_to_, offset - writeback_started_to_,
                          SYNC_FILE_RANGE_WRITE);
  writeback_started_to_ = offset;
}

std::string LocalWriter::digest() { return ingest_.hasher.digest(); }

errdefs::StatusOr<Status> LocalWriter::status() { return ingest_.status; }

errdefs::Status LocalWriter::truncate(int64_t size) {
  CTRD_RETURN_IF_ERROR(check_open());
  if (size < 0 || size > ingest_.status.offset) {
    return errdefs::InvalidArgument("truncate ingest " + ingest_.status.ref + " to " + std::to_string(size) +
                                    ": want a size between 0 and the offset " +
                                    std::to_string(ingest_.status.offset));
  }
  if (::ftruncate(ingest_.data.get(), static_cast<off_t>(size)) != 0) {
    return errdefs::FromErrno(errno, "truncate " + ingest_.paths.data);
  }
  ingest_.hasher.reset();
  ingest_.status.offset = 0;
  CTRD_ASSIGN_OR_RETURN(int64_t hashed, hash_file(ingest_.data.get(), ingest_.hasher, size));
  ingest_.status.offset = hashed;
  ingest_.status.updated_at = Clock::now();
  writeback_started_to_ = std::min(writeback_started_to_, hashed);
  return errdefs::Status::Ok();
}

errdefs::Status LocalWriter::commit(int64_t size, std::string_view expected, const Labels& /*labels*/) {
  // The local store keeps no labels (containerd's local store only does with a
  // separate label store); the metadata store records them.
  if (!ingest_.data.valid()) {
    return errdefs::FailedPrecondition("cannot commit on closed writer for ref " + ingest_.status.ref);
  }
  const std::string& ref = ingest_.status.ref;

  struct stat st {};
  if (::fstat(ingest_.data.get(), &st) != 0) {
    errdefs::Status failed = errdefs::FromErrno(errno, "stat " + ingest_.paths.data);
    close_resumable();
    return failed;
  }
  const int64_t actual_size = static_cast<int64_t>(st.st_size);
  if (actual_size != ingest_.status.offset) {
    close_resumable();
    return errdefs::DataLoss("ingest " + ref + " changed on disk: " + std::to_string(actual_size) +
                             " bytes in " + ingest_.paths.data + ", " +
                             std::to_string(ingest_.status.offset) + " written");
  }
  if (size > 0 && size != actual_size) {
    close_resumable();
    return errdefs::FailedPrecondition("unexpected commit size " + std::to_string(actual_size) +
                                       ", expected " + std::to_string(size));
  }
  const std::string hex = ingest_.hasher.hex();
  const std::string digest = "sha256:" + hex;
  if (!expected.empty() && expected != digest) {
    close_resumable();
    return errdefs::FailedPrecondition("unexpected commit digest " + digest + ", expected " +
                                       std::string(expected));
  }

  if (errdefs::Status made = os::ensure_dir(ingest_.blobs_dir, 0700); !made.ok()) {
    close_resumable();
    return made;
  }
  const std::string target = ingest_.blobs_dir + "/" + hex;
  struct stat existing {};
  if (::stat(target.c_str(), &existing) == 0) {
    remove_ingest_dir();
    return errdefs::AlreadyExists("content " + digest + ": already exists");
  }

  // Times first so one fsync makes both the bytes and the commit time durable
  // before the rename publishes them.
  const struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  if (::futimens(ingest_.data.get(), now) != 0) {
    const int err = errno;
    log::warn("failed to set commit time on blob", {{"digest", digest}, {"error", std::strerror(err)}});
  }
  if (::fsync(ingest_.data.get()) != 0) {
    errdefs::Status failed = errdefs::FromErrno(errno, "sync " + ingest_.paths.data);
    close_resumable();
    return failed;
  }
  if (::rename(ingest_.paths.data.c_str(), target.c_str()) != 0) {
    errdefs::Status failed = errdefs::FromErrno(errno, "rename " + ingest_.paths.data + " to " + target);
    close_resumable();
    return failed;
  }

  // The blob is published; what follows cannot be rolled back, so failures are
  // logged rather than returned.
  if (::fchmod(ingest_.data.get(), kBlobMode) != 0) {
    const int err = errno;
    log::warn("failed to make blob read-only", {{"digest", digest}, {"error", std::strerror(err)}});
  }
  ingest_.data.reset();
  if (errdefs::Status synced = sync_directory(ingest_.blobs_dir); !synced.ok()) {
    log::warn("failed to sync blob directory", {{"digest", digest}, {"error", synced.to_string()}});
  }
  remove_ingest_dir();
  return errdefs::Status::Ok();
}

void LocalWriter::remove_ingest_dir() {
  ingest_.data.reset();
  std::error_code ec;
  std::filesystem::remove_all(ingest_.paths.dir, ec);
  if (ec) {
    log::warn("failed to remove ingest directory",
              {{"ref", ingest_.status.ref}, {"path", ingest_.paths.dir}, {"error", ec.message()}});
  }
  ingest_.lock.release();
}

void LocalWriter::close_resumable() {
  if (!ingest_.data.valid()) return;
  // Without the sync a crash could leave `data` shorter than updatedat claims;
  // resume would still be correct (it trusts data's size) but lose progress.
  if (::fdatasync(ingest_.data.get()) != 0) {
    const int err = errno;
    log::warn("failed to sync ingest data", {{"ref", ingest_.status.ref}, {"error", std::strerror(err)}});
  }
  ingest_.data.reset();
  errdefs::Status recorded =
      write_file_durably(ingest_.paths.updated_at, format_timestamp(ingest_.status.updated_at));
  if (!recorded.ok()) {
    log::warn("failed to record ingest update time",
              {{"ref", ingest_.status.ref}, {"error", recorded.to_string()}});
  }
  ingest_.lock.release();
}

}  // namespace ctrd::content::local
