// os/fs: whole-tree filesystem work — copying a tree with everything a layer
// carries, removing one, and measuring one (the snapshotters' and bundles' needs).
#pragma once

#include <cstdint>
#include <string>

#include "errdefs/errdefs.h"

namespace ctrd::os::fs {

struct Usage {
  int64_t size = 0;  // bytes
  int64_t inodes = 0;
};

// Copies the contents of directory `src` into the existing, empty directory
// `dst`, and `src`'s own owner, mode, xattrs and times onto `dst`. Keeps
// owners, modes, times, xattrs, symlinks, hard links (within the tree) and
// device nodes. File data is reflinked when the filesystem can, otherwise
// copied in the kernel (copy_file_range).
errdefs::Status copy_tree(const std::string& src, const std::string& dst);

// Removes `path` and everything below it; a missing path is not an error.
errdefs::Status remove_tree(const std::string& path);

// Blocks (st_blocks * 512) and inodes used below and including `path`, each
// inode counted once however many links it has (containerd's fs.DiskUsage).
errdefs::StatusOr<Usage> disk_usage(const std::string& path);

}  // namespace ctrd::os::fs
