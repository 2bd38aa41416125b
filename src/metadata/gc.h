// gc: the metadata store's garbage collection (containerd's metadata GC).
//
// Roots: images, containers, leases (unexpired), and objects labelled
// "containerd.io/gc.root"; anything labelled "containerd.io/gc.expire" with a
// past time is not a root. References: an image's target blob; labels
// "containerd.io/gc.ref.content[.<any>]" = digest and
// "containerd.io/gc.ref.snapshot.<snapshotter>[.<any>]" = key on blobs,
// snapshots, images and containers; a snapshot's parent; a container's
// snapshot; a lease's resources. Everything unreachable is swept: blob rows,
// snapshot rows, expired unleased ingests — and then the shared blob store
// and the snapshotters are cleaned of what no namespace refers to any more.
//
// Mark runs in one read transaction (never blocks the API); the sweep deletes
// in short write transactions, and files are removed outside them.
#pragma once

#include <chrono>
#include <cstddef>

namespace ctrd::metadata {

struct GcStats {
  size_t blobs_removed = 0;
  size_t snapshots_removed = 0;
  size_t ingests_removed = 0;
  std::chrono::nanoseconds mark{0};
  std::chrono::nanoseconds sweep{0};
  std::chrono::nanoseconds cleanup{0};  // blob store and snapshotters
};

}  // namespace ctrd::metadata
