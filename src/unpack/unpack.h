// unpack: turns an image already in the content store into committed
// snapshots, one per layer and named by chain id, as containerd 1.6's client
// does after a pull (unpacker.go, rootfs/apply.go, image.go's Unpack). The CRI
// plugin's PullImage calls it so that containers can be prepared on the
// image's top chain id.
//
// Afterwards the image's config blob carries the label
// "containerd.io/gc.ref.snapshot.<snapshotter>" naming the top chain id, and
// every layer applied here carries "containerd.io/uncompressed" naming its
// diff id, so the garbage collector keeps the snapshots while the image does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "content/content.h"
#include "diff/diff.h"
#include "errdefs/errdefs.h"
#include "images/platform.h"
#include "metadata/db.h"

namespace ctrd::unpack {

// Prefix of the keys of snapshots being extracted (containerd's
// snapshots.UnpackKeyPrefix): "extract-<unique> <chain id>".
inline constexpr std::string_view kUnpackKeyPrefix = "extract";
// Content label naming the snapshot an image's config keeps alive: + snapshotter name.
inline constexpr std::string_view kGcRefSnapshotPrefix = "containerd.io/gc.ref.snapshot.";

struct UnpackContext {
  std::shared_ptr<metadata::DB> db;
  std::string ns;
  std::string snapshotter;  // a name given to metadata::DB::open
  std::shared_ptr<diff::Applier> applier;
  // The caller's lease (e.g. the one its pull holds); empty: unpack creates a
  // lease expiring in 24 hours for its own duration and removes it after, as
  // containerd's client.WithLease does.
  std::string lease;
};

// The chain id of a stack of layers given by their diff ids, bottom first
// (OCI image-spec identity.ChainID): the first layer's is its diff id, each
// next one is sha256 of "<parent chain id> <diff id>". Empty for no layers.
std::string chain_id(const std::vector<std::string>& diff_ids);

// Unpacks the image `image_target` leads to for `platform` into
// ctx.snapshotter of ctx.ns and returns its top chain id ("" for an image
// without layers). Layers whose chain id is already a snapshot are skipped,
// so unpacking twice is a no-op. A layer that applies to a digest other than
// its diff id is DataLoss naming both, and leaves no snapshot behind; other
// errors are those of images::resolve, the snapshotter and the applier, with
// context.
errdefs::StatusOr<std::string> unpack(const UnpackContext& ctx, const content::Descriptor& image_target,
                                      const images::Platform& platform);

}  // namespace ctrd::unpack
