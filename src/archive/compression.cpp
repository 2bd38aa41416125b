// Streaming gzip (isa-l) and zstd codecs behind the Reader / Writer pair, and
// the media-type table that says which one a layer needs.
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "archive/archive.h"

namespace ctrd::archive {
namespace {

// Big enough that a syscall or a codec call is amortised over a lot of data.
constexpr size_t kBufferSize = size_t{1} << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Inflates concatenated gzip members (pigz and some registries write several).
class GzipReader : public Reader {
 public:
  explicit GzipReader(std::unique_ptr<Reader> inner)
      : inner_(std::move(inner)), in_(kBufferSize + kSlack), state_(std::make_unique<inflate_state>()) {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;  // isa-l parses the header and checks the CRC32/ISIZE trailer
  }

  errdefs::StatusOr<size_t> read(char* buf, size_t n) override {
    if (!error_.ok()) return error_;
    n = std::min<size_t>(n, std::numeric_limits<uint32_t>::max());
    while (n > 0 && !done_) {
      if (state_->avail_in == 0 && !eof_) {
        auto got = inner_->read(reinterpret_cast<char*>(in_.data()), kBufferSize);
        if (!got.ok()) return error_ = got.status();
        if (*got == 0) {
          eof_ = true;
        } else {
          state_->next_in = in_.data();
          state_->avail_in = static_cast<uint32_t>(*got);
        }
      }
      if (state_->avail_in == 0 && eof_) {
        // A clean end is only between members, and there must have been one.
        if (member_started_ || !seen_member_)
          return error_ = errdefs::DataLoss("gzip: unexpected end of stream");
        done_ = true;
        break;
      }
      member_started_ = true;
      state_->next_out = reinterpret_cast<uint8_t*>(buf);
      state_->avail_out = static_cast<uint32_t>(n);
      const int rc = isal_inflate(state_.get());
      if (rc < 0) return error_ = corrupt(rc);
      const size_t produced = n - state_->avail_out;
      if (state_->block_state == ISAL_BLOCK_FINISH) next_member();
      if (produced > 0) return produced;
    }
    return size_t{0};
  }

 private:
  // isa-l keeps up to 8 bytes it has pulled in but not used in its bit buffer.
  static constexpr size_t kSlack = 16;

  static errdefs::Status corrupt(int rc) {
    switch (rc) {
      case ISAL_INCORRECT_CHECKSUM:
        return errdefs::DataLoss("gzip: invalid checksum");
      case ISAL_INVALID_WRAPPER:
      case ISAL_UNSUPPORTED_METHOD:
        return errdefs::DataLoss("gzip: invalid header");
      default:
        return errdefs::DataLoss("gzip: corrupt deflate data (isa-l error " + std::to_string(rc) + ")");
    }
  }

  // The bytes isa-l buffered past the trailer belong to the next member: put
  // them back in front of the unread input before resetting.
  void next_member() {
    seen_member_ = true;
    member_started_ = false;
    const size_t unused_bits = state_->read_in_length > 0 ? static_cast<size_t>(state_->read_in_length) : 0;
    const size_t unused = unused_bits / 8;
    uint8_t carry[8];
    for (size_t i = 0; i < unused; ++i) carry[i] = static_cast<uint8_t>(state_->read_in >> (8 * i));
    uint8_t* rest = state_->next_in;
    const size_t rest_len = state_->avail_in;
    uint8_t* start;
    if (rest_len == 0) {
      start = in_.data();
    } else if (static_cast<size_t>(rest - in_.data()) >= unused) {
      start = rest - unused;
    } else {
      std::memmove(in_.data() + unused, rest, rest_len);
      start = in_.data();
    }
    std::memcpy(start, carry, unused);
    isal_inflate_reset(state_.get());
    state_->crc_flag = ISAL_GZIP;
    state_->next_in = start;
    state_->avail_in = static_cast<uint32_t>(unused + rest_len);
  }

  std::unique_ptr<Reader> inner_;
  std::vector<uint8_t> in_;
  std::unique_ptr<inflate_state> state_;  // ~50 KiB: kept off the stack and out of the object
  errdefs::Status error_;
  bool eof_ = false;
  bool done_ = false;
  bool member_started_ = false;
  bool seen_member_ = false;
};

struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};
struct ZstdCCtxDeleter {
  void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};

class ZstdReader : public Reader {
 public:
  explicit ZstdReader(std::unique_ptr<Reader> inner)
      : inner_(std::move(inner)), in_(kBufferSize), ctx_(ZSTD_createDCtx()) {}

  errdefs::StatusOr<size_t> read(char* buf, size_t n) override {
    if (!error_.ok()) return error_;
    if (!ctx_) return error_ = errdefs::ResourceExhausted("zstd: cannot allocate a decompression context");
    while (n > 0 && !done_) {
      if (input_.pos == input_.size && !eof_) {
        auto got = inner_->read(in_.data(), in_.size());
        if (!got.ok()) return error_ = got.status();
        if (*got == 0) {
          eof_ = true;
        } else {
          input_ = {in_.data(), *got, 0};
        }
      }
      const bool input_done = eof_ && input_.pos == input_.size;
      // Between frames with nothing left to read: a clean end, if there was a frame.
      if (input_done && !frame_open_) {
        if (!seen_frame_) return error_ = errdefs::DataLoss("zstd: unexpected end of stream");
        done_ = true;
        break;
      }
      ZSTD_outBuffer output{buf, n, 0};
      const size_t rc = ZSTD_decompressStream(ctx_.get(), &output, &input_);
      if (ZSTD_isError(rc)) return error_ = errdefs::DataLoss(std::string("zstd: ") + ZSTD_getErrorName(rc));
      // 0: a frame is complete and flushed; anything else: more is expected.
      frame_open_ = rc != 0;
      if (rc == 0) seen_frame_ = true;
      if (output.pos > 0) return output.pos;
      if (input_done && frame_open_) return error_ = errdefs::DataLoss("zstd: unexpected end of stream");
    }
    return size_t{0};
  }

 private:
  std::unique_ptr<Reader> inner_;
  std::vector<char> in_;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> ctx_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  errdefs::Status error_;
  bool eof_ = false;
  bool done_ = false;
  bool frame_open_ = false;
  bool seen_frame_ = false;
};

class PassThroughWriter : public CompressingWriter {
 public:
  explicit PassThroughWriter(Writer& out) : out_(out) {}
  errdefs::Status write(std::string_view data) override { return out_.write(data); }
  errdefs::Status finish() override { return errdefs::Status::Ok(); }

 private:
  Writer& out_;
};

class GzipWriter : public CompressingWriter {
 public:
  explicit GzipWriter(Writer& out)
      : out_(out),
        out_buf_(kBufferSize),
        level_buf_(ISAL_DEF_LVL1_DEFAULT),
        stream_(std::make_unique<isal_zstream>()) {
    isal_deflate_init(stream_.get());
    stream_->level = 1;
    stream_->level_buf = level_buf_.data();
    stream_->level_buf_size = static_cast<uint32_t>(level_buf_.size());
    stream_->gzip_flag = IGZIP_GZIP;
  }

  errdefs::Status write(std::string_view data) override {
    if (finished_) return errdefs::FailedPrecondition("gzip: write after finish");
    while (!data.empty()) {
      const size_t chunk = std::min<size_t>(data.size(), std::numeric_limits<uint32_t>::max() / 2);
      stream_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
      stream_->avail_in = static_cast<uint32_t>(chunk);
      stream_->end_of_stream = 0;
      do {
        CTRD_RETURN_IF_ERROR(deflate_once());
      } while (stream_->avail_in > 0);
      data.remove_prefix(chunk);
    }
    return errdefs::Status::Ok();
  }

  errdefs::Status finish() override {
    if (finished_) return errdefs::Status::Ok();
    finished_ = true;
    stream_->next_in = nullptr;
    stream_->avail_in = 0;
    stream_->end_of_stream = 1;
    while (stream_->internal_state.state != ZSTATE_END) CTRD_RETURN_IF_ERROR(deflate_once());
    return errdefs::Status::Ok();
  }

 private:
  errdefs::Status deflate_once() {
    stream_->next_out = out_buf_.data();
    stream_->avail_out = static_cast<uint32_t>(out_buf_.size());
    const int rc = isal_deflate(stream_.get());
    if (rc != COMP_OK) return errdefs::Internal("gzip: isal_deflate failed (" + std::to_string(rc) + ")");
    const size_t produced = out_buf_.size() - stream_->avail_out;
    if (produced == 0) return errdefs::Status::Ok();
    return out_.write({reinterpret_cast<const char*>(out_buf_.data()), produced});
  }

  Writer& out_;
  std::vector<uint8_t> out_buf_;
  std::vector<uint8_t> level_buf_;
  std::unique_ptr<isal_zstream> stream_;
  bool finished_ = false;
};

class ZstdWriter : public CompressingWriter {
 public:
  explicit ZstdWriter(Writer& out) : out_(out), out_buf_(kBufferSize), ctx_(ZSTD_createCCtx()) {}

  errdefs::Status write(std::string_view data) override {
    if (finished_) return errdefs::FailedPrecondition("zstd: write after finish");
    ZSTD_inBuffer input{data.data(), data.size(), 0};
    while (input.pos < input.size) CTRD_RETURN_IF_ERROR(compress_once(input, ZSTD_e_continue).status());
    return errdefs::Status::Ok();
  }

  errdefs::Status finish() override {
    if (finished_) return errdefs::Status::Ok();
    finished_ = true;
    ZSTD_inBuffer input{nullptr, 0, 0};
    for (;;) {
      CTRD_ASSIGN_OR_RETURN(const size_t remaining, compress_once(input, ZSTD_e_end));
      if (remaining == 0) return errdefs::Status::Ok();
    }
  }

 private:
  errdefs::StatusOr<size_t> compress_once(ZSTD_inBuffer& input, ZSTD_EndDirective mode) {
    if (!ctx_) return errdefs::ResourceExhausted("zstd: cannot allocate a compression context");
    ZSTD_outBuffer output{out_buf_.data(), out_buf_.size(), 0};
    const size_t rc = ZSTD_compressStream2(ctx_.get(), &output, &input, mode);
    if (ZSTD_isError(rc)) return errdefs::Internal(std::string("zstd: ") + ZSTD_getErrorName(rc));
    if (output.pos > 0) CTRD_RETURN_IF_ERROR(out_.write({out_buf_.data(), output.pos}));
    return rc;
  }

  Writer& out_;
  std::vector<char> out_buf_;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> ctx_;
  bool finished_ = false;
};

}  // namespace

errdefs::StatusOr<Compression> compression_of(std::string_view media_type) {
  // Parameters (";...") do not change the layer format.
  std::string_view type = trim(media_type.substr(0, media_type.find(';')));
  const size_t plus = type.find('+');
  const std::string_view base = type.substr(0, plus);
  const std::string_view suffix = plus == std::string_view::npos ? std::string_view() : type.substr(plus + 1);

  if (base == "application/vnd.oci.image.layer.v1.tar" ||
      base == "application/vnd.oci.image.layer.nondistributable.v1.tar") {
    if (suffix.empty()) return Compression::kNone;
    if (suffix == "gzip") return Compression::kGzip;
    if (suffix == "zstd") return Compression::kZstd;
  } else if (suffix.empty()) {
    if (base == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
        base == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
      return Compression::kGzip;
    if (base == "application/vnd.docker.image.rootfs.diff.tar" ||
        base == "application/vnd.docker.image.rootfs.foreign.diff.tar")
      return Compression::kNone;
  }
  return errdefs::NotImplemented("unrecognised layer media type " + std::string(media_type));
}

std::unique_ptr<Reader> decompress(std::unique_ptr<Reader> compressed, Compression compression) {
  switch (compression) {
    case Compression::kGzip:
      return std::make_unique<GzipReader>(std::move(compressed));
    case Compression::kZstd:
      return std::make_unique<ZstdReader>(std::move(compressed));
    case Compression::kNone:
      break;
  }
  return compressed;
}

std::unique_ptr<CompressingWriter> compress(Writer& out, Compression compression) {
  switch (compression) {
    case Compression::kGzip:
      return std::make_unique<GzipWriter>(out);
    case Compression::kZstd:
      return std::make_unique<ZstdWriter>(out);
    case Compression::kNone:
      break;
  }
  return std::make_unique<PassThroughWriter>(out);
}

}  // namespace ctrd::archive
