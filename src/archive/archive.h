// archive: OCI layer tarballs — decompressing them as a stream, applying them
// to a directory, and writing one from the difference of two trees.
//
// Apply never touches anything outside its root: every path is resolved with
// openat2(RESOLVE_IN_ROOT) from a descriptor of the root, so "..", absolute
// names, symlinks (from this layer or an earlier one), hard links and
// whiteouts that point outside are clamped inside it or refused. The tar
// format itself is read and written with libarchive; gzip is inflated with
// isa-l (streams, ~2.5x zlib here), zstd with libzstd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::archive {

// A pull source of bytes. read returns 0 at the end.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual errdefs::StatusOr<size_t> read(char* buf, size_t n) = 0;
};

// A push sink of bytes.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual errdefs::Status write(std::string_view data) = 0;
};

enum class Compression { kNone, kGzip, kZstd };

// The compression of a layer media type (OCI and Docker layer types, with or
// without "+gzip" / "+zstd"); NotImplemented naming the type when unknown.
errdefs::StatusOr<Compression> compression_of(std::string_view media_type);

// Wraps `compressed` in a streaming decompressor. A truncated or corrupt
// stream is a DataLoss error from read(), naming the format.
std::unique_ptr<Reader> decompress(std::unique_ptr<Reader> compressed, Compression compression);

// Wraps `out` in a streaming compressor; finish() flushes the end of the stream.
class CompressingWriter : public Writer {
 public:
  virtual errdefs::Status finish() = 0;
};
std::unique_ptr<CompressingWriter> compress(Writer& out, Compression compression);

struct ApplyOptions {
  enum class Whiteouts {
    kRemove,   // root is the whole tree: delete what a whiteout names
    kOverlay,  // root is an overlay upper dir: write 0/0 char devices and "trusted.overlay.opaque"
  };
  Whiteouts whiteouts = Whiteouts::kRemove;
  // kOverlay: the lower layer directories, top-most first — where a hard
  // link's target is looked up when it is not in this layer.
  std::vector<std::string> lowers;
};

struct ApplyResult {
  std::string digest;  // sha256 of the uncompressed tar, "sha256:<hex>"
  int64_t size = 0;    // bytes of uncompressed tar read
};

// Applies the uncompressed tar read from `tar` to the directory `root`:
// regular files, directories, symlinks, hard links, device nodes and fifos,
// with owners, modes, times and xattrs; OCI whiteouts (".wh.<name>") and
// opaque directories (".wh..wh..opq") as `options` says. Entries that would
// escape `root` are refused with InvalidArgument naming the entry; a broken
// tar is DataLoss. What was applied before an error stays (the caller throws
// the snapshot away).
errdefs::StatusOr<ApplyResult> apply(Reader& tar, const std::string& root, const ApplyOptions& options);

struct DiffOptions {
  // How `upper` records deletions: kRemove compares `upper` with `lower` as
  // whole trees; kOverlay reads an overlay upper dir (whiteout devices and
  // opaque xattrs) and needs no `lower`.
  ApplyOptions::Whiteouts upper_kind = ApplyOptions::Whiteouts::kRemove;
};

// Writes to `out` an uncompressed tar that turns `lower` into `upper` when
// applied (OCI whiteouts for what `upper` lacks). `lower` may be empty (no
// parent). Entries are in lexical path order, parents before children, so a
// tool reading it can apply it in one pass.
errdefs::Status write_diff(const std::string& lower, const std::string& upper, const DiffOptions& options,
                           Writer& out);

}  // namespace ctrd::archive
