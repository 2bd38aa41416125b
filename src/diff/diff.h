// diff: applying layers to mounts and computing layers from two mounts
// (containerd's diff.Applier and diff.Comparer), the interfaces the diff
// service and image unpacking use. The walking differ (diff/walking.h)
// implements both over the namespace's content store.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "mount/mount.h"

namespace ctrd::diff {

using Descriptor = content::Descriptor;

// Uncompressed OCI layer, what Apply reports as applied.
inline constexpr std::string_view kMediaTypeLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
// Label on a compressed layer blob naming its uncompressed digest.
inline constexpr std::string_view kUncompressedLabel = "containerd.io/uncompressed";

struct ApplyRequest {
  std::string ns;
  Descriptor layer;
  std::vector<mount::Mount> mounts;
  // Stream processor id -> serialized google.protobuf.Any, handed to that
  // processor on fd 3 (see diff/stream_processor.h).
  std::map<std::string, std::string> payloads;
};

struct CompareRequest {
  std::string ns;
  std::string lease;  // may be empty
  std::vector<mount::Mount> lower;
  std::vector<mount::Mount> upper;
  std::string media_type;  // empty: gzip-compressed OCI layer
  std::string ref;         // ingest ref; empty: generated
  std::map<std::string, std::string> labels;
};

class Applier {
 public:
  virtual ~Applier() = default;
  // Applies the layer blob to what `mounts` describe; returns the applied
  // (uncompressed) descriptor. The mounts are always unmounted again.
  virtual errdefs::StatusOr<Descriptor> apply(const ApplyRequest& request) = 0;
};

class Comparer {
 public:
  virtual ~Comparer() = default;
  // Writes the layer that turns `lower` into `upper` into the content store
  // and returns its descriptor; the blob is labelled with its uncompressed digest.
  virtual errdefs::StatusOr<Descriptor> compare(const CompareRequest& request) = 0;
};

// A differ plugin's instance implements both.
class Differ : public Applier, public Comparer {};

}  // namespace ctrd::diff
