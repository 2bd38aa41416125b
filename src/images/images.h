// images: reads an image as the content store holds it, as containerd's images
// package does (images.Manifest / Config / RootFS / Image.Size): from the
// image's target descriptor, through an index or manifest list to the manifest
// for a platform, then its config and layers. The CRI plugin builds its image
// records on resolve(): image id (config digest), the config's runtime
// defaults, the layers with their diff ids, and the size.
//
// Every blob is read whole, under a size cap, and checked against its
// descriptor's size and digest, so a corrupt or hostile store answers with an
// error rather than a huge allocation or a wrong image. Documents are JSON
// parsed with nlohmann_json; no exception leaves the module.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "images/media_types.h"
#include "images/platform.h"

namespace ctrd::images {

// Size caps of the documents read whole into memory: larger ones are
// ResourceExhausted. Real manifests and configs are a few KiB.
inline constexpr int64_t kMaxManifestSize = int64_t{4} << 20;  // manifests and indexes
inline constexpr int64_t kMaxConfigSize = int64_t{8} << 20;
// Indexes may nest (an index entry naming another index); deeper than this is refused.
inline constexpr int kMaxIndexDepth = 8;

// The one content-store operation images need: open a committed blob by
// digest (containerd's content.Provider). StoreProvider adapts any
// content::Store (the local store, a namespace's metadata store).
class Provider {
 public:
  virtual ~Provider() = default;
  virtual errdefs::StatusOr<std::unique_ptr<content::ReaderAt>> reader_at(std::string_view digest) = 0;
};

class StoreProvider final : public Provider {
 public:
  explicit StoreProvider(content::Store& store) : store_(store) {}
  errdefs::StatusOr<std::unique_ptr<content::ReaderAt>> reader_at(std::string_view digest) override {
    return store_.reader_at(digest);
  }

 private:
  content::Store& store_;
};

// The blob `descriptor` names, whole. InvalidArgument for a bad digest or a
// negative size; ResourceExhausted when the descriptor or the blob is over
// `max_size`; DataLoss when the blob's size or digest is not the descriptor's;
// the provider's error (NotFound, ...) when it cannot open it.
errdefs::StatusOr<std::string> read_blob(Provider& provider, const content::Descriptor& descriptor,
                                         int64_t max_size);

// An image manifest (OCI or Docker schema 2).
struct Manifest {
  std::string media_type;  // as the document states it; often empty for OCI
  content::Descriptor config;
  std::vector<content::Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

// One entry of an index: a manifest (or nested index) and the platform it is for.
struct IndexEntry {
  content::Descriptor descriptor;
  std::optional<Platform> platform;  // absent: not stated, the manifest's config tells
};

// An OCI index or Docker manifest list.
struct Index {
  std::string media_type;
  std::vector<IndexEntry> manifests;
  std::map<std::string, std::string> annotations;
};

// The OCI image config (Docker's is the same document for these fields).
struct ImageConfig {
  std::string created;  // RFC 3339 as written; empty when absent
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  // config: the defaults of a container run from the image.
  std::string user;
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::vector<std::string> volumes;        // the keys of config.Volumes, sorted
  std::vector<std::string> exposed_ports;  // the keys of config.ExposedPorts ("80/tcp"), sorted
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  // rootfs: the digests of the uncompressed layers, bottom first.
  std::string rootfs_type;
  std::vector<std::string> diff_ids;
};

// Document parsers. A blob that is not JSON, or whose fields have the wrong
// JSON types or invalid digests, is InvalidArgument naming the field. Unknown
// fields are ignored and null reads as absent, as Go's encoding/json does.
// `media_type` is the descriptor's: a manifest that holds an index's fields
// (or the reverse), or a schema 1 manifest, is refused as containerd does.
errdefs::StatusOr<Manifest> parse_manifest(std::string_view json, std::string_view media_type);
errdefs::StatusOr<Index> parse_index(std::string_view json, std::string_view media_type);
errdefs::StatusOr<ImageConfig> parse_image_config(std::string_view json);

// The manifest an image target leads to for a platform.
struct ResolvedManifest {
  content::Descriptor descriptor;
  Manifest manifest;
  // The indexes walked through to it, outermost first; empty when the
  // target is a manifest.
  std::vector<content::Descriptor> indexes;
};

// containerd's images.Manifest with platforms.Only(platform): a manifest
// target is taken as it is, whatever its platform. In an index the entries
// the platform runs are ordered by preference (entries without a platform
// last, otherwise in index order) and the first is taken; an entry without a
// platform is taken only if its config's os/architecture match. NotFound "no
// match for platform in manifest" when nothing in an index matches; NotFound
// for a target or entry whose media type is neither manifest nor index.
errdefs::StatusOr<ResolvedManifest> resolve_manifest(Provider& provider, const content::Descriptor& target,
                                                     const Platform& platform);

// The config blob `config` names, parsed (under kMaxConfigSize).
errdefs::StatusOr<ImageConfig> read_image_config(Provider& provider, const content::Descriptor& config);

// An image resolved for a platform: everything the CRI image service reports.
struct ResolvedImage {
  content::Descriptor manifest;
  content::Descriptor config;  // its digest is the image id
  std::vector<content::Descriptor> layers;
  std::vector<std::string> diff_ids;  // one per layer, in layer order
  ImageConfig config_data;
  // containerd's Image.Size: the sizes of the target and every index walked,
  // the manifest, the config and all layers, as their descriptors state them.
  int64_t size = 0;
};

// resolve_manifest, then the config, checked: the config and layer media
// types must be known ones (InvalidArgument otherwise) and there must be as
// many diff ids as layers (InvalidArgument).
errdefs::StatusOr<ResolvedImage> resolve(Provider& provider, const content::Descriptor& target,
                                         const Platform& platform);

}  // namespace ctrd::images
