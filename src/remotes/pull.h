// remotes/pull: fetches an image from a registry into a content store, as
// containerd's client Pull (without unpacking): the target, for an index only
// the manifest the platform prefers (containerd's FilterPlatforms and
// LimitManifests(1)), then its config and layers, several at a time. Blobs
// the store already has are not fetched again.
//
// Labels are containerd's: a parent (index or manifest) is committed with
// the garbage-collection references to the children this pull takes
// (containerd.io/gc.ref.content.m.<i>, .config, .l.<i>), and every blob gets
// containerd.io/distribution.source.<registry host>=<repository> (a sorted,
// comma-separated list when several repositories share it).
//
// Leases: content::Store has no per-call lease; a pull into a lease passes a
// store bound to one (metadata::DB::content_store(ns, lease)), which keeps
// what is committed before the image record exists from the collector.
#pragma once

#include <cstddef>
#include <string_view>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "images/platform.h"
#include "remotes/resolver.h"

namespace ctrd::remotes {

struct PullOptions {
  images::Platform platform = images::host_platform();
  size_t max_concurrent_downloads = 3;  // CRI's max_concurrent_downloads
};

// Pulls `ref` (parsed and normalized here) and returns its target
// descriptor. A blob that fails verification is never committed and its
// ingest is aborted; the first error stops the pull (blobs already committed
// stay, as in containerd). NotFound when an index has nothing for the platform.
errdefs::StatusOr<content::Descriptor> pull(Resolver& resolver, std::string_view ref, content::Store& store,
                                            const PullOptions& options = {});

// containerd's distribution source label: key for a registry host (its name
// without the port) and the merged value for `repository`.
std::string distribution_source_key(std::string_view domain);
std::string append_distribution_source(std::string_view existing, std::string_view repository);

}  // namespace ctrd::remotes
