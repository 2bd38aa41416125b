#include "os/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "os/unique_fd.h"

namespace ctrd::os::fs {

using errdefs::Status;
using errdefs::StatusOr;
using os::UniqueFd;

namespace {

// One allocation for a path or message made of several parts (these run per
// file in copies and usage walks).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  out.reserve((std::string_view(parts).size() + ...));
  (out.append(std::string_view(parts)), ...);
  return out;
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

// Names in the directory open as `dirfd`, without "." and "..".
StatusOr<std::vector<std::string>> list_dir(int dirfd, const std::string& where) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return errdefs::FromErrno(errno, "dup " + where);
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(dup));
  if (!dir) {
    int err = errno;
    ::close(dup);
    return errdefs::FromErrno(err, "open dir " + where);
  }
  ::rewinddir(dir.get());  // the dup shares its offset with dirfd
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir.get())) {
    std::string_view name(e->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  if (errno != 0) return errdefs::FromErrno(errno, "read dir " + where);
  return names;
}

StatusOr<UniqueFd> open_at(int dirfd, const std::string& name, int flags, const std::string& where) {
  UniqueFd fd(::openat(dirfd, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errdefs::FromErrno(errno, "open " + where);
  return fd;
}

// A path that reaches `name` in `dirfd` without following a final symlink,
// for the xattr calls that have no *at() form.
std::string proc_path(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

bool xattr_unsupported(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

// Copies xattrs from `src` to `dst` (both fds, or both paths when fds are -1).
Status copy_xattrs(int src_fd, int dst_fd, const std::string& src_path, const std::string& dst_path,
                   const std::string& where) {
  auto list = [&](char* buf, size_t size) {
    return src_fd >= 0 ? ::flistxattr(src_fd, buf, size) : ::llistxattr(src_path.c_str(), buf, size);
  };
  ssize_t size = list(nullptr, 0);
  if (size < 0) {
    if (xattr_unsupported(errno)) return Status::Ok();
    return errdefs::FromErrno(errno, "list xattrs of " + where);
  }
  if (size == 0) return Status::Ok();
  std::string names(static_cast<size_t>(size), '\0');
  size = list(names.data(), names.size());
  if (size < 0) return errdefs::FromErrno(errno, "list xattrs of " + where);
  names.resize(static_cast<size_t>(size));
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    auto get = [&](void* buf, size_t n) {
      return src_fd >= 0 ? ::fgetxattr(src_fd, name.c_str(), buf, n)
                         : ::lgetxattr(src_path.c_str(), name.c_str(), buf, n);
    };
    ssize_t vsize = get(nullptr, 0);
    if (vsize < 0) {
      if (errno == ENODATA) continue;
      return errdefs::FromErrno(errno, cat("get xattr ", name, " of ", where));
    }
    std::string value(static_cast<size_t>(vsize), '\0');
    vsize = get(value.data(), value.size());
    if (vsize < 0) return errdefs::FromErrno(errno, cat("get xattr ", name, " of ", where));
    value.resize(static_cast<size_t>(vsize));
    int rc = dst_fd >= 0 ? ::fsetxattr(dst_fd, name.c_str(), value.data(), value.size(), 0)
                         : ::lsetxattr(dst_path.c_str(), name.c_str(), value.data(), value.size(), 0);
    if (rc != 0 && !xattr_unsupported(errno))
      return errdefs::FromErrno(errno, cat("set xattr ", name, " on ", where));
  }
  return Status::Ok();
}

// Owner, then mode (chown clears set-id bits), then xattrs, for an open file or dir.
Status copy_attrs_fd(int src_fd, int dst_fd, const struct stat& st, const std::string& where) {
  if (::fchown(dst_fd, st.st_uid, st.st_gid) != 0) return errdefs::FromErrno(errno, "chown " + where);
  if (::fchmod(dst_fd, st.st_mode & 07777) != 0) return errdefs::FromErrno(errno, "chmod " + where);
  return copy_xattrs(src_fd, dst_fd, "", "", where);
}

Status copy_times_fd(int dst_fd, const struct stat& st, const std::string& where) {
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(dst_fd, times) != 0) return errdefs::FromErrno(errno, "set times of " + where);
  return Status::Ok();
}

Status copy_data(int src, int dst, off_t size, const std::string& where) {
  if (::ioctl(dst, FICLONE, src) == 0) return Status::Ok();
  off_t left = size;
  bool in_kernel = true;
  std::vector<char> buf;
  while (left > 0) {
    if (in_kernel) {
      ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, static_cast<size_t>(left), 0);
      if (n > 0) {
        left -= n;
        continue;
      }
      if (n == 0) break;  // the file shrank while being copied
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
        return errdefs::FromErrno(errno, "copy " + where);
      }
      in_kernel = false;
      buf.resize(1 << 20);
    }
    ssize_t n = ::read(src, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errdefs::FromErrno(errno, "read " + where);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(dst, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return errdefs::FromErrno(errno, "write " + where);
      off += w;
    }
    left -= n;
  }
  return Status::Ok();
}

struct InodeKey {
  dev_t dev;
  ino_t ino;
  auto operator<=>(const InodeKey&) const = default;  // NOLINT(modernize-use-nullptr): tidy misreads it
};

class TreeCopier {
 public:
  TreeCopier(int dst_root, std::string dst_root_path)
      : dst_root_(dst_root), dst_root_path_(std::move(dst_root_path)) {}

  // Copies the entries of `src_dir` into `dst_dir`; `rel` is dst_dir's path below the root.
  Status copy_entries(int src_dir, int dst_dir, const std::string& rel) {
    CTRD_ASSIGN_OR_RETURN(auto names, list_dir(src_dir, where(rel)));
    for (const auto& name : names) {
      CTRD_RETURN_IF_ERROR(copy_entry(src_dir, dst_dir, rel.empty() ? name : cat(rel, "/", name), name));
    }
    return Status::Ok();
  }

 private:
  std::string where(const std::string& rel) const { return dst_root_path_ + "/" + rel; }

  Status copy_entry(int src_dir, int dst_dir, const std::string& rel, const std::string& name) {
    struct stat st {};
    if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return errdefs::FromErrno(errno, "stat source of " + where(rel));
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(dst_dir, name.c_str(), 0700) != 0)
        return errdefs::FromErrno(errno, "mkdir " + where(rel));
      CTRD_ASSIGN_OR_RETURN(UniqueFd src, open_at(src_dir, name, O_RDONLY | O_DIRECTORY, where(rel)));
      CTRD_ASSIGN_OR_RETURN(UniqueFd dst, open_at(dst_dir, name, O_RDONLY | O_DIRECTORY, where(rel)));
      CTRD_RETURN_IF_ERROR(copy_entries(src.get(), dst.get(), rel));
      CTRD_RETURN_IF_ERROR(copy_attrs_fd(src.get(), dst.get(), st, where(rel)));
      // Last: creating the children changed the directory's mtime.
      return copy_times_fd(dst.get(), st, where(rel));
    }
    if (st.st_nlink > 1) {
      auto [it, first] = links_.try_emplace(InodeKey{st.st_dev, st.st_ino}, rel);
      if (!first) {
        if (::linkat(dst_root_, it->second.c_str(), dst_dir, name.c_str(), 0) != 0) {
          return errdefs::FromErrno(errno, "link " + where(rel));
        }
        return Status::Ok();
      }
    }
    if (S_ISREG(st.st_mode)) {
      CTRD_ASSIGN_OR_RETURN(UniqueFd src, open_at(src_dir, name, O_RDONLY, where(rel)));
      UniqueFd dst(
          ::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!dst.valid()) return errdefs::FromErrno(errno, "create " + where(rel));
      CTRD_RETURN_IF_ERROR(copy_data(src.get(), dst.get(), st.st_size, where(rel)));
      CTRD_RETURN_IF_ERROR(copy_attrs_fd(src.get(), dst.get(), st, where(rel)));
      return copy_times_fd(dst.get(), st, where(rel));
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
      if (n < 0) return errdefs::FromErrno(errno, "readlink source of " + where(rel));
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0) {
        return errdefs::FromErrno(errno, "symlink " + where(rel));
      }
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      if (::mknodat(dst_dir, name.c_str(), st.st_mode, st.st_rdev) != 0) {
        return errdefs::FromErrno(errno, "mknod " + where(rel));
      }
    } else {
      return errdefs::InvalidArgument("unsupported file type at " + where(rel));
    }
    // Not opened (symlinks, devices): owner and mode by name, xattrs through /proc.
    if (::fchownat(dst_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return errdefs::FromErrno(errno, "chown " + where(rel));
    }
    if (!S_ISLNK(st.st_mode) && ::fchmodat(dst_dir, name.c_str(), st.st_mode & 07777, 0) != 0) {
      return errdefs::FromErrno(errno, "chmod " + where(rel));
    }
    CTRD_RETURN_IF_ERROR(copy_xattrs(-1, -1, proc_path(src_dir, name), proc_path(dst_dir, name), where(rel)));
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return errdefs::FromErrno(errno, "set times of " + where(rel));
    }
    return Status::Ok();
  }

  int dst_root_;
  std::string dst_root_path_;
  std::map<InodeKey, std::string> links_;  // first copy of each multiply-linked inode
};

Status usage_of(int dirfd, const std::string& where, std::set<InodeKey>& seen, Usage& usage) {
  CTRD_ASSIGN_OR_RETURN(auto names, list_dir(dirfd, where));
  for (const auto& name : names) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while walking
      return errdefs::FromErrno(errno, cat("stat ", where, "/", name));
    }
    if (seen.insert(InodeKey{st.st_dev, st.st_ino}).second) usage.size += st.st_blocks * 512;
    if (S_ISDIR(st.st_mode)) {
      CTRD_ASSIGN_OR_RETURN(UniqueFd sub,
                            open_at(dirfd, name, O_RDONLY | O_DIRECTORY, cat(where, "/", name)));
      CTRD_RETURN_IF_ERROR(usage_of(sub.get(), cat(where, "/", name), seen, usage));
    }
  }
  return Status::Ok();
}

}  // namespace

Status copy_tree(const std::string& src, const std::string& dst) {
  UniqueFd src_fd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src_fd.valid()) return errdefs::FromErrno(errno, "open " + src);
  UniqueFd dst_fd(::open(dst.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dst_fd.valid()) return errdefs::FromErrno(errno, "open " + dst);
  struct stat st {};
  if (::fstat(src_fd.get(), &st) != 0) return errdefs::FromErrno(errno, "stat " + src);
  TreeCopier copier(dst_fd.get(), dst);
  CTRD_RETURN_IF_ERROR(copier.copy_entries(src_fd.get(), dst_fd.get(), ""));
  CTRD_RETURN_IF_ERROR(copy_attrs_fd(src_fd.get(), dst_fd.get(), st, dst));
  return copy_times_fd(dst_fd.get(), st, dst);
}

Status remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return errdefs::FromErrno(ec.value(), "remove " + path);
  return Status::Ok();
}

StatusOr<Usage> disk_usage(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errdefs::FromErrno(errno, "open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errdefs::FromErrno(errno, "stat " + path);
  std::set<InodeKey> seen{{st.st_dev, st.st_ino}};
  Usage usage{.size = st.st_blocks * 512, .inodes = 0};
  CTRD_RETURN_IF_ERROR(usage_of(fd.get(), path, seen, usage));
  usage.inodes = static_cast<int64_t>(seen.size());
  return usage;
}

}  // namespace ctrd::os::fs
