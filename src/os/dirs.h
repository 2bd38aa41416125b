// os/dirs.h: directories the daemon owns, with the modes it means them to
// have, and the check that code it loads or executes is not writable by others.
//
// ensure_dir creates a directory (and its missing parents) with an exact mode,
// whatever the umask, and tightens one that already exists with looser bits
// (e.g. made by an earlier version) to that mode, logging each one it tightens.
// It never loosens a mode an operator made tighter. Thread-safe.
#pragma once

#include <sys/types.h>

#include <string>

#include "errdefs/errdefs.h"

namespace ctrd::os {

errdefs::Status ensure_dir(const std::string& path, mode_t mode);

// Creates the missing directories above `path` as 0711 (traversable, not
// listable); existing ones are the operator's and are left as they are.
errdefs::Status create_parents(const std::string& path);

// Ok when `path` may be loaded or executed as trusted code: the file and every
// directory above it (symlinks resolved) are owned by root or by this
// process's user and are writable by neither group nor others. Otherwise
// PermissionDenied naming the offending path (the file or a directory above
// it, after symlinks) and its owner or mode.
errdefs::Status check_trusted_file(const std::string& path);

}  // namespace ctrd::os
