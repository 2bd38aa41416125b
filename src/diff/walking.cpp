#include "diff/walking.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>

#include "archive/archive.h"
#include "diff/stream_processor.h"
#include "digest/sha256.h"
#include "log/log.h"
#include "os/dirs.h"

namespace ctrd::diff {
namespace {

using errdefs::Status;
using errdefs::StatusOr;

// Reads a blob front to back for the decompressor.
class BlobReader final : public archive::Reader {
 public:
  explicit BlobReader(std::unique_ptr<content::ReaderAt> blob) : blob_(std::move(blob)) {}
  StatusOr<size_t> read(char* buf, size_t n) override {
    CTRD_ASSIGN_OR_RETURN(size_t got, blob_->read_at(buf, n, offset_));
    offset_ += static_cast<int64_t>(got);
    return got;
  }

 private:
  std::unique_ptr<content::ReaderAt> blob_;
  int64_t offset_ = 0;
};

bool has_option(const mount::Mount& m, std::string_view option) {
  return std::find(m.options.begin(), m.options.end(), option) != m.options.end();
}

bool is_bind(const mount::Mount& m) {
  return m.type == "bind" || m.type == "rbind" || has_option(m, "bind") || has_option(m, "rbind");
}

// A directory that holds what a mount list shows, without mounting.
struct DirectDir {
  std::string dir;
  archive::ApplyOptions::Whiteouts whiteouts = archive::ApplyOptions::Whiteouts::kRemove;
  std::vector<std::string> lowers;
};

std::optional<DirectDir> direct_dir(const std::vector<mount::Mount>& mounts, bool writable) {
  if (mounts.size() != 1 || !mounts[0].target.empty()) return std::nullopt;
  const mount::Mount& m = mounts[0];
  if (is_bind(m)) {
    if (writable && has_option(m, "ro")) return std::nullopt;
    return DirectDir{m.source, archive::ApplyOptions::Whiteouts::kRemove, {}};
  }
  if (m.type == "overlay") {
    std::string upper = mount::option_value(m, "upperdir");
    if (upper.empty()) return std::nullopt;
    return DirectDir{upper, archive::ApplyOptions::Whiteouts::kOverlay, mount::overlay_lowerdirs(m)};
  }
  return std::nullopt;
}

// A readable tree of `mounts`: its directory when it needs no mount, else a
// temporary mount.
struct ReadableTree {
  std::string dir;
  std::optional<mount::TempMount> mounted;
};

StatusOr<ReadableTree> readable_tree(const std::vector<mount::Mount>& mounts, const std::string& scratch) {
  if (mounts.empty()) return ReadableTree{};
  if (mounts.size() == 1 && is_bind(mounts[0]) && mounts[0].target.empty()) {
    return ReadableTree{mounts[0].source, std::nullopt};
  }
  CTRD_ASSIGN_OR_RETURN(auto tm, mount::TempMount::create(scratch, mounts));
  ReadableTree tree{tm.path(), std::nullopt};
  tree.mounted.emplace(std::move(tm));
  return tree;
}

std::string generated_ref() {
  std::random_device rd;
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return "diff-" + std::to_string(now) + "-" + std::to_string(rd());
}

// Counts and hashes the uncompressed tar on its way to the compressor.
class HashingWriter final : public archive::Writer {
 public:
  explicit HashingWriter(archive::Writer& next) : next_(next) {}
  Status write(std::string_view data) override {
    sha_.update(data);
    return next_.write(data);
  }
  std::string digest() const { return sha_.digest(); }

 private:
  archive::Writer& next_;
  digest::Sha256 sha_;
};

class ContentSink final : public archive::Writer {
 public:
  explicit ContentSink(content::Writer& w) : w_(w) {}
  Status write(std::string_view data) override {
    size_ += static_cast<int64_t>(data.size());
    return w_.write(data);
  }
  int64_t size() const { return size_; }

 private:
  content::Writer& w_;
  int64_t size_ = 0;
};

}  // namespace

StatusOr<Descriptor> WalkingDiffer::apply(const ApplyRequest& request) {
  log::debug("applying layer", {{"digest", request.layer.digest}, {"media_type", request.layer.media_type}});
  auto store = db_->content_store(request.ns);
  CTRD_ASSIGN_OR_RETURN(auto blob, store->reader_at(request.layer.digest));
  CTRD_ASSIGN_OR_RETURN(
      auto tar, LayerStream::open(std::make_unique<BlobReader>(std::move(blob)), request.layer.media_type,
                                  StreamProcessors::global(), request.payloads));

  const auto started = std::chrono::steady_clock::now();
  std::optional<mount::TempMount> mounted;
  std::string root;
  archive::ApplyOptions options;
  if (auto direct = direct_dir(request.mounts, /*writable=*/true)) {
    root = direct->dir;
    options.whiteouts = direct->whiteouts;
    options.lowers = std::move(direct->lowers);
  } else {
    CTRD_ASSIGN_OR_RETURN(auto tm, mount::TempMount::create(scratch_dir_, request.mounts));
    root = tm.path();
    mounted.emplace(std::move(tm));
  }
  auto applied = archive::apply(*tar, root, options);
  // Before the unmount: a processor still writing must not see its layer's tree go away first.
  if (Status closed = tar->close(applied.status()); !closed.ok()) applied = closed;
  if (mounted) {
    Status released = mounted->release();
    if (applied.ok() && !released.ok()) return released;
  }
  if (!applied.ok()) return applied.status().with_context("apply layer " + request.layer.digest);
  log::debug("applied layer", {{"digest", request.layer.digest},
                               {"uncompressed", applied->digest},
                               {"ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                         std::chrono::steady_clock::now() - started)
                                                         .count())}});
  return Descriptor{std::string(kMediaTypeLayer), applied->digest, applied->size, {}};
}

StatusOr<Descriptor> WalkingDiffer::compare(const CompareRequest& request) {
  std::string media_type = request.media_type.empty() ? std::string(kMediaTypeLayerGzip) : request.media_type;
  CTRD_ASSIGN_OR_RETURN(archive::Compression compression, archive::compression_of(media_type));

  // An overlay upper over exactly the lower tree holds the whole difference.
  std::optional<DirectDir> overlay_upper;
  if (auto up = direct_dir(request.upper, /*writable=*/false);
      up && up->whiteouts == archive::ApplyOptions::Whiteouts::kOverlay) {
    std::vector<std::string> lower_dirs;
    if (auto low = direct_dir(request.lower, false);
        low && low->whiteouts == archive::ApplyOptions::Whiteouts::kRemove) {
      lower_dirs = {low->dir};
    } else if (request.lower.size() == 1 && request.lower[0].type == "overlay") {
      lower_dirs = mount::overlay_lowerdirs(request.lower[0]);
    }
    if (lower_dirs == up->lowers || (request.lower.empty() && up->lowers.empty())) overlay_upper = up;
  }

  auto store = db_->content_store(request.ns, request.lease);
  const std::string ref = request.ref.empty() ? generated_ref() : request.ref;
  CTRD_ASSIGN_OR_RETURN(auto writer, store->writer({.ref = ref}));
  ContentSink sink(*writer);
  auto compressor = archive::compress(sink, compression);
  HashingWriter tar(*compressor);

  Status written;
  if (overlay_upper) {
    written = archive::write_diff("", overlay_upper->dir, {archive::ApplyOptions::Whiteouts::kOverlay}, tar);
  } else {
    CTRD_ASSIGN_OR_RETURN(auto lower, readable_tree(request.lower, scratch_dir_));
    CTRD_ASSIGN_OR_RETURN(auto upper, readable_tree(request.upper, scratch_dir_));
    written = archive::write_diff(lower.dir, upper.dir, {}, tar);
  }
  if (written.ok()) written = compressor->finish();
  if (!written.ok()) {
    (void)store->abort(ref);
    return written.with_context("diff");
  }
  auto labels = request.labels;
  labels[std::string(kUncompressedLabel)] = tar.digest();
  const std::string digest = writer->digest();
  Status committed = writer->commit(sink.size(), digest, labels);
  if (!committed.ok() && !errdefs::IsAlreadyExists(committed)) return committed;
  return Descriptor{media_type, digest, sink.size(), {}};
}

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kDiff),
      .id = "walking",
      .requirements = {std::string(plugin::type::kMetadata)},
      .init = [](plugin::InitContext& ic) -> StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(auto db, ic.get<metadata::DB>(plugin::type::kMetadata));
        CTRD_RETURN_IF_ERROR(os::ensure_dir(ic.state(), 0700));
        ic.meta().platforms.push_back(plugin::host_platform());
        return plugin::Instance::of<WalkingDiffer, Differ, Applier, Comparer>(
            std::make_shared<WalkingDiffer>(std::move(db), ic.state()));
      },
  });
}

}  // namespace ctrd::diff
