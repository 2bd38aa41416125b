#include "os/dirs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "log/log.h"

namespace ctrd::os {
namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

errdefs::Status create_parents(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (parent.empty() || parent == path) return errdefs::FromErrno(ENOENT, "create " + path);
  if (::mkdir(parent.c_str(), 0711) != 0) {
    if (errno == EEXIST) return errdefs::Status::Ok();
    if (errno != ENOENT) return errdefs::FromErrno(errno, "create " + parent);
    CTRD_RETURN_IF_ERROR(create_parents(parent));
    if (::mkdir(parent.c_str(), 0711) != 0 && errno != EEXIST)
      return errdefs::FromErrno(errno, "create " + parent);
  }
  // mkdir applies the umask; ours are meant traversable.
  if (::chmod(parent.c_str(), 0711) != 0) return errdefs::FromErrno(errno, "chmod " + parent);
  return errdefs::Status::Ok();
}

errdefs::Status ensure_dir(const std::string& path, mode_t mode) {
  if (path.empty()) return errdefs::InvalidArgument("directory path must not be empty");
  if (::mkdir(path.c_str(), mode) == 0) {
    // mkdir applies the umask; the mode is meant exactly.
    if (::chmod(path.c_str(), mode) != 0) return errdefs::FromErrno(errno, "chmod " + path);
    return errdefs::Status::Ok();
  }
  if (errno == ENOENT) {
    CTRD_RETURN_IF_ERROR(create_parents(path));
    return ensure_dir(path, mode);
  }
  if (errno != EEXIST) return errdefs::FromErrno(errno, "create " + path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errdefs::FromErrno(errno, "stat " + path);
  if (!S_ISDIR(st.st_mode)) return errdefs::FailedPrecondition(path + " exists and is not a directory");
  const mode_t current = st.st_mode & 07777;
  if ((current & ~mode) == 0) return errdefs::Status::Ok();
  const mode_t tightened = current & mode;
  if (::chmod(path.c_str(), tightened) != 0) return errdefs::FromErrno(errno, "chmod " + path);
  log::warn("tightened permissions of a directory the daemon owns",
            {{"path", path}, {"from", octal(current)}, {"to", octal(tightened)}});
  return errdefs::Status::Ok();
}

namespace {

// `resolved` (no symlinks left) and every directory above it.
errdefs::Status check_trusted_chain(std::filesystem::path p, const std::string& given) {
  const uid_t self = ::geteuid();
  while (true) {
    const std::string where = p == std::filesystem::path(given) ? given : p.string();
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return errdefs::FromErrno(errno, "stat " + p.string());
    if (st.st_uid != 0 && st.st_uid != self) {
      return errdefs::PermissionDenied(where + " is owned by uid " + std::to_string(st.st_uid) +
                                       ", neither root nor the daemon's user");
    }
    // A sticky directory (e.g. /tmp) still lets anyone plant a new name in it.
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      return errdefs::PermissionDenied(where + " has mode " + octal(st.st_mode) +
                                       ", writable by group or others");
    }
    if (!p.has_relative_path()) return errdefs::Status::Ok();
    p = p.parent_path();
  }
}

errdefs::StatusOr<std::filesystem::path> real_path(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return errdefs::FromErrno(errno, "resolve " + path);
  return std::filesystem::path(resolved);
}

}  // namespace

errdefs::Status check_trusted_file(const std::string& path) {
  // The directories the name is found through (whoever can write there can
  // swap the name, a symlink included), then the file it leads to.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  CTRD_ASSIGN_OR_RETURN(auto dir_resolved, real_path(dir));
  CTRD_RETURN_IF_ERROR(check_trusted_chain(dir_resolved, dir));
  CTRD_ASSIGN_OR_RETURN(auto file_resolved, real_path(path));
  return check_trusted_chain(file_resolved, path);
}

}  // namespace ctrd::os
