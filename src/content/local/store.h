// content/local: the on-disk content store (containerd's content/local).
//
//   <root>/blobs/sha256/<hex>   committed blobs, read-only, renamed in whole
//   <root>/ingest/<hash>/       one directory per active ingest (see ingest.h)
//
// Blobs only ever appear under blobs/ by an atomic rename of a synced file, so a
// crash at any moment leaves committed blobs intact and partial ingests
// resumable from the size of their `data`. The store keeps no labels; the
// metadata store layers namespaces, labels and leases on top of it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::content::local {

struct Options {
  // How long writer() waits for another Writer of the same ref to close before
  // answering Unavailable. containerd retries for about as long, which hides
  // the race between a client closing one stream and opening the next.
  std::chrono::milliseconds lock_wait{500};
};

// Opens (creating as needed) the store rooted at `root`. The store is safe to
// use from many threads.
errdefs::StatusOr<std::shared_ptr<Store>> open_store(const std::string& root, const Options& options = {});

}  // namespace ctrd::content::local
