#include "archive/tar_stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include <cstring>

namespace ctrd::archive {
namespace {

constexpr size_t kBufferSize = size_t{1} << 20;

}  // namespace

struct TarReader::Hash {
  struct Deleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Deleter> ctx{EVP_MD_CTX_new()};
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
};

TarReader::TarReader(Reader& source)
    : source_(source), buffer_(kBufferSize), hash_(std::make_unique<Hash>()) {}

TarReader::~TarReader() {
  if (archive_ != nullptr) archive_read_free(archive_);
}

errdefs::Status TarReader::open() {
  if (!hash_->ok) return errdefs::Internal("tar: cannot initialise sha256");
  archive_ = archive_read_new();
  if (archive_ == nullptr) return errdefs::ResourceExhausted("tar: cannot allocate a reader");
  // Only tar (ustar, pax, gnutar) and the empty file: no filter or other
  // format code is reachable from a layer blob.
  if (archive_read_support_format_tar(archive_) != ARCHIVE_OK ||
      archive_read_support_format_gnutar(archive_) != ARCHIVE_OK ||
      archive_read_support_format_empty(archive_) != ARCHIVE_OK)
    return failure("enable tar format");
  if (archive_read_open(archive_, this, nullptr, &TarReader::read_callback, nullptr) != ARCHIVE_OK)
    return failure("open");
  return errdefs::Status::Ok();
}

ptrdiff_t TarReader::read_callback(struct archive* a, void* self, const void** buffer) {
  auto* reader = static_cast<TarReader*>(self);
  *buffer = reader->buffer_.data();
  if (reader->source_eof_) return 0;
  auto got = reader->source_.read(reader->buffer_.data(), reader->buffer_.size());
  if (!got.ok()) {
    reader->source_error_ = got.status();
    archive_set_error(a, EIO, "%s", got.status().message().c_str());
    return -1;
  }
  if (*got == 0) {
    reader->source_eof_ = true;
    return 0;
  }
  EVP_DigestUpdate(reader->hash_->ctx.get(), reader->buffer_.data(), *got);
  reader->bytes_read_ += static_cast<int64_t>(*got);
  return static_cast<ptrdiff_t>(*got);
}

errdefs::Status TarReader::failure(std::string_view what) {
  if (!source_error_.ok()) return source_error_;
  const char* message = archive_ != nullptr ? archive_error_string(archive_) : nullptr;
  return errdefs::DataLoss("tar: " + std::string(what) + ": " + (message ? message : "invalid archive"));
}

errdefs::StatusOr<archive_entry*> TarReader::next() {
  archive_entry* entry = nullptr;
  const int rc = archive_read_next_header(archive_, &entry);
  if (rc == ARCHIVE_EOF) return static_cast<archive_entry*>(nullptr);
  if (rc < ARCHIVE_WARN) return failure("read header");
  return entry;
}

errdefs::StatusOr<TarReader::Block> TarReader::data_block() {
  Block block;
  const void* data = nullptr;
  la_int64_t offset = 0;
  const int rc = archive_read_data_block(archive_, &data, &block.size, &offset);
  if (rc == ARCHIVE_EOF) return Block{};
  if (rc < ARCHIVE_WARN) return failure("read data");
  block.data = static_cast<const char*>(data);
  block.offset = offset;
  return block;
}

errdefs::Status TarReader::drain() {
  const void* ignored = nullptr;
  while (!source_eof_) {
    const ptrdiff_t n = read_callback(archive_, this, &ignored);
    if (n < 0) return source_error_;
  }
  return errdefs::Status::Ok();
}

std::string TarReader::digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(hash_->ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

TarWriter::TarWriter(Writer& out) : out_(out) {}

TarWriter::~TarWriter() {
  if (archive_ != nullptr) archive_write_free(archive_);
}

errdefs::Status TarWriter::open() {
  archive_ = archive_write_new();
  if (archive_ == nullptr) return errdefs::ResourceExhausted("tar: cannot allocate a writer");
  if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK) return failure("set format");
  // Only SCHILY.xattr records: what Go's archive/tar (and so containerd) reads.
  archive_write_set_options(archive_, "xattrheader=SCHILY");
  // Hand the sink large blocks, and do not pad the last one to a full record.
  archive_write_set_bytes_per_block(archive_, static_cast<int>(kBufferSize));
  archive_write_set_bytes_in_last_block(archive_, 1);
  if (archive_write_open(archive_, this, nullptr, &TarWriter::write_callback, nullptr) != ARCHIVE_OK)
    return failure("open");
  return errdefs::Status::Ok();
}

ptrdiff_t TarWriter::write_callback(struct archive* a, void* self, const void* buffer, size_t length) {
  auto* writer = static_cast<TarWriter*>(self);
  errdefs::Status status = writer->out_.write({static_cast<const char*>(buffer), length});
  if (!status.ok()) {
    writer->sink_error_ = std::move(status);
    archive_set_error(a, EIO, "%s", writer->sink_error_.message().c_str());
    return -1;
  }
  return static_cast<ptrdiff_t>(length);
}

errdefs::Status TarWriter::failure(std::string_view what) {
  if (!sink_error_.ok()) return sink_error_;
  const char* message = archive_ != nullptr ? archive_error_string(archive_) : nullptr;
  return errdefs::Internal("tar: " + std::string(what) + ": " + (message ? message : "write failed"));
}

errdefs::Status TarWriter::write_header(archive_entry* entry) {
  if (archive_write_header(archive_, entry) < ARCHIVE_WARN) return failure("write header");
  return errdefs::Status::Ok();
}

errdefs::Status TarWriter::write_data(const char* data, size_t size) {
  while (size > 0) {
    const la_ssize_t n = archive_write_data(archive_, data, size);
    if (n <= 0) return failure("write data");
    data += n;
    size -= static_cast<size_t>(n);
  }
  return errdefs::Status::Ok();
}

errdefs::Status TarWriter::close() {
  if (closed_) return errdefs::Status::Ok();
  closed_ = true;
  if (archive_write_close(archive_) != ARCHIVE_OK) return failure("close");
  return errdefs::Status::Ok();
}

void EntryDeleter::operator()(archive_entry* entry) const { archive_entry_free(entry); }

UniqueEntry new_entry() { return UniqueEntry(archive_entry_new()); }

}  // namespace ctrd::archive
