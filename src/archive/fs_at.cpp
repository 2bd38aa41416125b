#include "archive/fs_at.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace ctrd::archive::fs {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// fdopendir takes the descriptor over; opens a readable one for `name`.
errdefs::StatusOr<UniqueDir> open_dir(int dir_fd, const char* name) {
  const int fd = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errdefs::FromErrno(errno, std::string("open directory ") + name);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return errdefs::FromErrno(err, std::string("fdopendir ") + name);
  }
  return UniqueDir(dir);
}

errdefs::Status remove_children(DIR* dir) {
  const int fd = ::dirfd(dir);
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) return errdefs::FromErrno(errno, "readdir");
      return errdefs::Status::Ok();
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    CTRD_RETURN_IF_ERROR(remove_all(fd, entry->d_name));
  }
}

}  // namespace

std::string clean_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t end = name.find('/', pos);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view part = name.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      const size_t slash = out.rfind('/');
      out.resize(slash == std::string::npos ? 0 : slash);
      continue;
    }
    if (!out.empty()) out.push_back('/');
    out.append(part);
  }
  return out;
}

Split split(std::string_view clean) {
  const size_t slash = clean.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), clean};
  return {clean.substr(0, slash), clean.substr(slash + 1)};
}

int open_in_root_raw(int root_fd, std::string_view path, int flags, os::UniqueFd& out) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const std::string p = path.empty() ? std::string(".") : std::string(path);
  // EAGAIN: a concurrent rename somewhere in the tree made the kernel unsure
  // the walk stayed inside; trying again is what the man page asks for.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const long fd = ::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof(how));
    if (fd >= 0) {
      out.reset(static_cast<int>(fd));
      return 0;
    }
    if (errno != EAGAIN && errno != EINTR) return errno;
  }
  return EAGAIN;
}

errdefs::StatusOr<os::UniqueFd> open_in_root(int root_fd, std::string_view path, int flags) {
  os::UniqueFd fd;
  if (const int err = open_in_root_raw(root_fd, path, flags, fd); err != 0)
    return errdefs::FromErrno(err, "open " + std::string(path));
  return fd;
}

errdefs::Status remove_all(int dir_fd, const std::string& name) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0) return errdefs::Status::Ok();
  if (errno == ENOENT) return errdefs::Status::Ok();
  if (errno != EISDIR) return errdefs::FromErrno(errno, "remove " + name);
  {
    CTRD_ASSIGN_OR_RETURN(UniqueDir dir, open_dir(dir_fd, name.c_str()));
    CTRD_RETURN_IF_ERROR(remove_children(dir.get()));
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return errdefs::FromErrno(errno, "remove directory " + name);
  return errdefs::Status::Ok();
}

errdefs::StatusOr<std::vector<std::string>> list_dir(int dir_fd) {
  CTRD_ASSIGN_OR_RETURN(UniqueDir dir, open_dir(dir_fd, "."));
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) return errdefs::FromErrno(errno, "readdir");
      break;
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string proc_path(int dir_fd, std::string_view name) {
  std::string path = "/proc/self/fd/" + std::to_string(dir_fd);
  if (!name.empty()) {
    path.push_back('/');
    path.append(name);
  }
  return path;
}

errdefs::StatusOr<std::vector<Xattr>> list_xattrs(int dir_fd, std::string_view name) {
  const std::string path = proc_path(dir_fd, name);
  std::vector<Xattr> out;
  std::string names(256, '\0');
  ssize_t len;
  for (;;) {
    len = ::llistxattr(path.c_str(), names.data(), names.size());
    if (len >= 0) break;
    if (errno == ENOTSUP) return out;
    if (errno != ERANGE) return errdefs::FromErrno(errno, "list xattrs of " + std::string(name));
    const ssize_t need = ::llistxattr(path.c_str(), nullptr, 0);
    if (need < 0) return errdefs::FromErrno(errno, "list xattrs of " + std::string(name));
    names.resize(static_cast<size_t>(need) + 1);
  }
  for (size_t pos = 0; pos < static_cast<size_t>(len);) {
    const std::string key(names.c_str() + pos);
    pos += key.size() + 1;
    if (key.empty()) continue;
    std::string value(64, '\0');
    for (;;) {
      const ssize_t n = ::lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        break;
      }
      if (errno == ENODATA) {
        value.clear();
        break;
      }
      if (errno != ERANGE) return errdefs::FromErrno(errno, "read xattr " + key + " of " + std::string(name));
      const ssize_t need = ::lgetxattr(path.c_str(), key.c_str(), nullptr, 0);
      if (need < 0) return errdefs::FromErrno(errno, "read xattr " + key + " of " + std::string(name));
      value.resize(static_cast<size_t>(need));
    }
    out.push_back({key, std::move(value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

}  // namespace ctrd::archive::fs
