// archive/fs_at: descriptor-relative file system helpers for apply and diff.
// Everything here takes a directory descriptor and one name (or a path
// resolved with openat2(RESOLVE_IN_ROOT)), so no symlink can take an
// operation outside the tree it started in. Internal to src/archive.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"

namespace ctrd::archive::fs {

// A tar entry name made relative and lexically clean: "./a//b/" -> "a/b",
// "/x" -> "x"; ".." pops a component and never climbs above the root
// ("../../etc" -> "etc"). Empty means the root itself.
std::string clean_name(std::string_view name);

// Splits a clean name into its parent ("" for the root) and last component.
struct Split {
  std::string_view parent;
  std::string_view base;
};
Split split(std::string_view clean);

// openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): dirfd
// acts as "/" for every absolute symlink and ".." met on the way. Returns -errno
// style failures as a Status whose message names `path`.
errdefs::StatusOr<os::UniqueFd> open_in_root(int root_fd, std::string_view path, int flags);

// Same, but returns the errno instead of a Status (for callers that branch on it).
int open_in_root_raw(int root_fd, std::string_view path, int flags, os::UniqueFd& out);

// Removes `name` under `dir_fd`, recursing into it when it is a directory.
// A missing name is not an error. Never follows symlinks.
errdefs::Status remove_all(int dir_fd, const std::string& name);

// The sorted names of a directory's entries ("." and ".." left out).
errdefs::StatusOr<std::vector<std::string>> list_dir(int dir_fd);

// "/proc/self/fd/<dir_fd>/<name>": a path for the l*xattr calls, which have no
// *at() form. The magic link names the directory itself; `name` is then looked
// up without following a final symlink.
std::string proc_path(int dir_fd, std::string_view name);

struct Xattr {
  std::string name;
  std::string value;
};
// The xattrs of `name` in `dir_fd` (not following a symlink), sorted by name.
errdefs::StatusOr<std::vector<Xattr>> list_xattrs(int dir_fd, std::string_view name);

}  // namespace ctrd::archive::fs
