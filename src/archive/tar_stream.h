// archive/tar_stream: libarchive, restricted to the tar formats, reading from a
// Reader (hashing every byte it pulls) and writing PAX to a Writer. Only
// headers and data go through libarchive; apply.cpp creates the files itself.
// Internal to src/archive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive.h"

struct archive;
struct archive_entry;

namespace ctrd::archive {

// Pulls tar entries out of a Reader. The sha256 and byte count cover every
// byte read from the Reader, including what follows the end-of-archive marker
// once drain() has run.
class TarReader {
 public:
  explicit TarReader(Reader& source);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  errdefs::Status open();
  // The next entry, or nullptr at the end of the archive. Valid until the next call.
  errdefs::StatusOr<archive_entry*> next();
  // A block of the current entry's data at `offset`; size 0 at the end.
  struct Block {
    const char* data = nullptr;
    size_t size = 0;
    int64_t offset = 0;
  };
  errdefs::StatusOr<Block> data_block();
  // Reads the source to its end, so the digest covers the whole blob.
  errdefs::Status drain();

  std::string digest();  // "sha256:<hex>"
  int64_t bytes_read() const { return bytes_read_; }

 private:
  static ptrdiff_t read_callback(struct archive* a, void* self, const void** buffer);
  errdefs::Status failure(std::string_view what);

  struct Hash;
  Reader& source_;
  std::vector<char> buffer_;
  std::unique_ptr<Hash> hash_;
  struct archive* archive_ = nullptr;
  errdefs::Status source_error_;
  int64_t bytes_read_ = 0;
  bool source_eof_ = false;
};

// Writes a PAX (restricted: plain ustar when an entry needs nothing more)
// tar to a Writer, with xattrs as SCHILY.xattr records.
class TarWriter {
 public:
  explicit TarWriter(Writer& out);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  errdefs::Status open();
  errdefs::Status write_header(archive_entry* entry);
  errdefs::Status write_data(const char* data, size_t size);
  // Writes the end-of-archive marker and flushes.
  errdefs::Status close();

 private:
  static ptrdiff_t write_callback(struct archive* a, void* self, const void* buffer, size_t length);
  errdefs::Status failure(std::string_view what);

  Writer& out_;
  struct archive* archive_ = nullptr;
  errdefs::Status sink_error_;
  bool closed_ = false;
};

// An archive_entry owned by RAII.
struct EntryDeleter {
  void operator()(archive_entry* entry) const;
};
using UniqueEntry = std::unique_ptr<archive_entry, EntryDeleter>;
UniqueEntry new_entry();

}  // namespace ctrd::archive
