// apply(): extraction done by hand on descriptors. libarchive only parses;
// every name is cleaned lexically, its parent is resolved with
// openat2(RESOLVE_IN_ROOT) and the last component is created with *at() calls
// that do not follow it, so no entry can reach outside the root.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <unordered_set>
#include <vector>

#include "archive/archive.h"
#include "archive/fs_at.h"
#include "archive/tar_stream.h"

namespace ctrd::archive {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

errdefs::Status errno_status(int err, std::string_view what, std::string_view name) {
  return errdefs::FromErrno(err, std::string(what) + " " + std::string(name));
}

struct Times {
  timespec ts[2];  // atime, mtime as utimensat wants them
};

Times times_of(archive_entry* entry) {
  Times t{};
  t.ts[1].tv_sec = archive_entry_mtime_is_set(entry) ? archive_entry_mtime(entry) : 0;
  t.ts[1].tv_nsec = archive_entry_mtime_is_set(entry) ? archive_entry_mtime_nsec(entry) : 0;
  if (archive_entry_atime_is_set(entry)) {
    t.ts[0].tv_sec = archive_entry_atime(entry);
    t.ts[0].tv_nsec = archive_entry_atime_nsec(entry);
  } else {
    t.ts[0] = t.ts[1];
  }
  return t;
}

bool is_overlay_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

class Applier {
 public:
  Applier(Reader& tar, const ApplyOptions& options) : tar_(tar), options_(options) {}

  errdefs::StatusOr<ApplyResult> run(const std::string& root) {
    const int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, "open root", root);
    root_.reset(fd);
    lowers_.resize(options_.lowers.size());

    CTRD_RETURN_IF_ERROR(tar_.open());
    for (;;) {
      CTRD_ASSIGN_OR_RETURN(archive_entry * entry, tar_.next());
      if (entry == nullptr) break;
      const char* raw = archive_entry_pathname(entry);
      if (raw == nullptr) return errdefs::InvalidArgument("tar entry without a usable name");
      name_ = fs::clean_name(raw);
      if (name_.empty()) continue;  // the root itself is the caller's, not the layer's
      errdefs::Status status = apply_entry(entry);
      if (!status.ok()) return status.with_context("tar entry " + std::string(raw));
    }
    CTRD_RETURN_IF_ERROR(apply_dir_times());
    CTRD_RETURN_IF_ERROR(tar_.drain());
    return ApplyResult{tar_.digest(), tar_.bytes_read()};
  }

 private:
  errdefs::Status apply_entry(archive_entry* entry) {
    const fs::Split split = fs::split(name_);
    base_.assign(split.base);
    if (split.base.starts_with(kWhiteoutPrefix)) return apply_whiteout(split.parent, entry);

    CTRD_ASSIGN_OR_RETURN(const int parent, parent_dir(split.parent));
    if (const char* link = archive_entry_hardlink(entry); link != nullptr) {
      CTRD_RETURN_IF_ERROR(create_hardlink(parent, link));
    } else {
      switch (archive_entry_filetype(entry)) {
        case AE_IFREG:
          return create_file(parent, entry);  // sets its metadata through its descriptor
        case AE_IFDIR:
          CTRD_RETURN_IF_ERROR(create_dir(parent));
          break;
        case AE_IFLNK: {
          const char* target = archive_entry_symlink(entry);
          CTRD_RETURN_IF_ERROR(create_symlink(parent, target ? target : ""));
          break;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO:
          CTRD_RETURN_IF_ERROR(create_node(parent, entry));
          break;
        default:
          return errdefs::Status::Ok();  // sockets and unknown kinds are not layer content
      }
    }
    CTRD_RETURN_IF_ERROR(set_metadata(parent, entry));
    remember_applied();
    return errdefs::Status::Ok();
  }

  void remember_applied() {
    if (options_.whiteouts == ApplyOptions::Whiteouts::kRemove) applied_.insert(name_);
  }

  // ---- parents -------------------------------------------------------------

  // A descriptor (owned by the cache or the root) of the directory `parent`,
  // created with its missing ancestors if needed.
  errdefs::StatusOr<int> parent_dir(std::string_view parent) {
    if (parent.empty()) return root_.get();
    if (cache_valid_ && cached_parent_ == parent) return cached_fd_.get();
    CTRD_ASSIGN_OR_RETURN(os::UniqueFd fd, open_parent(parent));
    cached_parent_.assign(parent);
    cached_fd_ = std::move(fd);
    cache_valid_ = true;
    return cached_fd_.get();
  }

  errdefs::StatusOr<os::UniqueFd> open_parent(std::string_view parent) {
    os::UniqueFd fd;
    const int err = fs::open_in_root_raw(root_.get(), parent, O_PATH | O_DIRECTORY, fd);
    if (err == ENOENT) return make_parents(parent);
    if (err == ENOTDIR)
      return errdefs::InvalidArgument("parent " + std::string(parent) + " is not a directory");
    if (err != 0) return errno_status(err, "open parent", parent);
    return fd;
  }

  void invalidate_cache() { cache_valid_ = false; }

  // Creates the missing directories of `parent` (0755) one component at a
  // time. A component that is a symlink pointing nowhere gets its target
  // created, inside the root, as containerd does.
  errdefs::StatusOr<os::UniqueFd> make_parents(std::string_view parent, int depth = 0) {
    if (depth > 40)
      return errdefs::InvalidArgument("too many levels of symbolic links in " + std::string(parent));
    os::UniqueFd current;
    int current_fd = root_.get();
    for (size_t pos = 0; pos <= parent.size();) {
      size_t end = parent.find('/', pos);
      if (end == std::string_view::npos) end = parent.size();
      const std::string prefix(parent.substr(0, end));
      const std::string component(parent.substr(pos, end - pos));
      const std::string_view above = parent.substr(0, pos == 0 ? 0 : pos - 1);
      pos = end + 1;
      if (component.empty() || component == ".") continue;
      os::UniqueFd next;
      int err = fs::open_in_root_raw(root_.get(), prefix, O_PATH | O_DIRECTORY, next);
      if (err == ENOENT) {
        if (::mkdirat(current_fd, component.c_str(), 0755) == 0) {
          if (!options_.lowers.empty())
            CTRD_RETURN_IF_ERROR(copy_dir_info_from_lowers(prefix, current_fd, component));
        } else if (errno == EEXIST) {
          CTRD_RETURN_IF_ERROR(make_link_target(current_fd, component, above, depth));
        } else {
          return errno_status(errno, "create parent", prefix);
        }
        err = fs::open_in_root_raw(root_.get(), prefix, O_PATH | O_DIRECTORY, next);
      }
      if (err == ENOTDIR) return errdefs::InvalidArgument("parent " + prefix + " is not a directory");
      if (err != 0) return errno_status(err, "open parent", prefix);
      current = std::move(next);
      current_fd = current.get();
    }
    if (!current.valid()) return fs::open_in_root(root_.get(), "", O_PATH | O_DIRECTORY);
    return current;
  }

  errdefs::Status make_link_target(int dir_fd, const std::string& name, std::string_view above, int depth) {
    char target[4096];
    const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target, sizeof(target) - 1);
    if (n < 0) return errdefs::InvalidArgument("parent " + name + " is not a directory");
    const std::string_view link(target, static_cast<size_t>(n));
    // Resolved by openat2 from the root, so ".." and "/" in it stay inside.
    std::string path = link.starts_with('/') || above.empty() ? std::string(link)
                                                              : std::string(above) + "/" + std::string(link);
    return make_parents(path, depth + 1).status();
  }

  // An overlay upper dir created only as a parent would hide the lower dir's
  // owner and mode in the merged view; give it the lower dir's.
  errdefs::Status copy_dir_info_from_lowers(const std::string& path, int dir_fd, const std::string& name) {
    for (size_t i = 0; i < options_.lowers.size(); ++i) {
      CTRD_ASSIGN_OR_RETURN(const int lower, lower_root(i));
      os::UniqueFd fd;
      const int err = fs::open_in_root_raw(lower, path, O_PATH | O_NOFOLLOW, fd);
      if (err == ENOENT || err == ENOTDIR) continue;
      if (err != 0) return errno_status(err, "open lower", path);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "stat lower", path);
      if (!S_ISDIR(st.st_mode)) return errdefs::Status::Ok();  // replaced there: nothing to inherit
      if (::fchownat(dir_fd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_status(errno, "chown", path);
      if (::fchmodat(dir_fd, name.c_str(), st.st_mode & 07777, 0) != 0)
        return errno_status(errno, "chmod", path);
      const timespec ts[2] = {st.st_atim, st.st_mtim};
      if (::utimensat(dir_fd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_status(errno, "set times of", path);
      return errdefs::Status::Ok();
    }
    return errdefs::Status::Ok();
  }

  errdefs::StatusOr<int> lower_root(size_t i) {
    if (!lowers_[i].valid()) {
      const int fd = ::open(options_.lowers[i].c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return errno_status(errno, "open lower", options_.lowers[i]);
      lowers_[i].reset(fd);
    }
    return lowers_[i].get();
  }

  // ---- entries ------------------------------------------------------------

  errdefs::Status replace(int parent) {
    invalidate_cache();
    return fs::remove_all(parent, base_);
  }

  errdefs::Status create_file(int parent, archive_entry* entry) {
    int fd = ::openat(parent, base_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
      CTRD_RETURN_IF_ERROR(replace(parent));
      fd = ::openat(parent, base_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0) return errno_status(errno, "create", name_);
    os::UniqueFd file(fd);

    int64_t end = 0;
    for (;;) {
      CTRD_ASSIGN_OR_RETURN(const TarReader::Block block, tar_.data_block());
      if (block.size == 0) break;
      size_t done = 0;
      while (done < block.size) {
        const ssize_t n =
            ::pwrite(fd, block.data + done, block.size - done, static_cast<off_t>(block.offset + done));
        if (n < 0) {
          if (errno == EINTR) continue;
          return errno_status(errno, "write", name_);
        }
        done += static_cast<size_t>(n);
      }
      end = block.offset + static_cast<int64_t>(block.size);
    }
    // A sparse file can end in a hole that no block covers.
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > end) {
      if (::ftruncate(fd, archive_entry_size(entry)) != 0) return errno_status(errno, "truncate", name_);
    }

    if (::fchown(fd, archive_entry_uid(entry), archive_entry_gid(entry)) != 0)
      return errno_status(errno, "chown", name_);
    CTRD_RETURN_IF_ERROR(set_xattrs(fd, std::string(), entry, true));
    // After chown, which clears set-user-ID and set-group-ID.
    if (::fchmod(fd, archive_entry_perm(entry) & 07777) != 0) return errno_status(errno, "chmod", name_);
    const Times t = times_of(entry);
    if (::futimens(fd, t.ts) != 0) return errno_status(errno, "set times of", name_);
    remember_applied();
    return errdefs::Status::Ok();
  }

  errdefs::Status create_dir(int parent) {
    if (::mkdirat(parent, base_.c_str(), 0755) == 0) return errdefs::Status::Ok();
    if (errno != EEXIST) return errno_status(errno, "create directory", name_);
    struct stat st {};
    if (::fstatat(parent, base_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      return errdefs::Status::Ok();  // a directory over a directory merges
    CTRD_RETURN_IF_ERROR(replace(parent));
    if (::mkdirat(parent, base_.c_str(), 0755) != 0) return errno_status(errno, "create directory", name_);
    return errdefs::Status::Ok();
  }

  errdefs::Status create_symlink(int parent, const char* target) {
    if (::symlinkat(target, parent, base_.c_str()) == 0) return errdefs::Status::Ok();
    if (errno != EEXIST) return errno_status(errno, "create symlink", name_);
    CTRD_RETURN_IF_ERROR(replace(parent));
    if (::symlinkat(target, parent, base_.c_str()) != 0) return errno_status(errno, "create symlink", name_);
    return errdefs::Status::Ok();
  }

  errdefs::Status create_node(int parent, archive_entry* entry) {
    const mode_t mode = archive_entry_filetype(entry) | (archive_entry_perm(entry) & 07777);
    const dev_t dev = archive_entry_filetype(entry) == AE_IFIFO
                          ? 0
                          : makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
    if (::mknodat(parent, base_.c_str(), mode, dev) == 0) return errdefs::Status::Ok();
    if (errno != EEXIST) return errno_status(errno, "create node", name_);
    CTRD_RETURN_IF_ERROR(replace(parent));
    if (::mknodat(parent, base_.c_str(), mode, dev) != 0) return errno_status(errno, "create node", name_);
    return errdefs::Status::Ok();
  }

  errdefs::Status create_hardlink(int parent, const char* link) {
    const std::string target = fs::clean_name(link);
    if (target.empty()) return errdefs::InvalidArgument("hard link to the root directory");
    if (target == name_) return errdefs::Status::Ok();  // a link to itself changes nothing
    const fs::Split split = fs::split(target);
    const std::string target_base(split.base);

    os::UniqueFd target_parent;
    int err = fs::open_in_root_raw(root_.get(), split.parent, O_PATH | O_DIRECTORY, target_parent);
    if (err == 0 && ::linkat(target_parent.get(), target_base.c_str(), parent, base_.c_str(), 0) == 0)
      return errdefs::Status::Ok();
    if (err == 0) err = errno;
    if (err == EEXIST) {
      CTRD_RETURN_IF_ERROR(replace(parent));
      if (::linkat(target_parent.get(), target_base.c_str(), parent, base_.c_str(), 0) == 0)
        return errdefs::Status::Ok();
      err = errno;
    }
    if (err == ENOENT && options_.whiteouts == ApplyOptions::Whiteouts::kOverlay &&
        !options_.lowers.empty()) {
      // The target lives in a lower layer: copy it up so the link has an inode here.
      CTRD_RETURN_IF_ERROR(copy_up(target));
      CTRD_ASSIGN_OR_RETURN(target_parent, fs::open_in_root(root_.get(), split.parent, O_PATH | O_DIRECTORY));
      if (::linkat(target_parent.get(), target_base.c_str(), parent, base_.c_str(), 0) == 0)
        return errdefs::Status::Ok();
      err = errno;
    }
    if (err == ENOENT) return errdefs::NotFound("hard link target " + target + " not found");
    if (err == EPERM) return errdefs::InvalidArgument("cannot hard link to " + target + " (a directory?)");
    return errno_status(err, "hard link to", target);
  }

  errdefs::Status copy_up(const std::string& path) {
    const fs::Split split = fs::split(path);
    const std::string base(split.base);
    for (size_t i = 0; i < options_.lowers.size(); ++i) {
      CTRD_ASSIGN_OR_RETURN(const int lower, lower_root(i));
      os::UniqueFd lower_parent;
      const int err = fs::open_in_root_raw(lower, split.parent, O_PATH | O_DIRECTORY, lower_parent);
      if (err == ENOENT || err == ENOTDIR) continue;
      if (err != 0) return errno_status(err, "open lower", split.parent);
      struct stat st {};
      if (::fstatat(lower_parent.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return errno_status(errno, "stat lower", path);
      }
      // A whiteout in a higher lower hides whatever the deeper ones hold.
      if (is_overlay_whiteout(st)) break;
      if (S_ISDIR(st.st_mode))
        return errdefs::InvalidArgument("hard link target " + path + " is a directory");

      // The copy's parent is created like any other (inheriting lower dir
      // info), but outside the cache: the caller holds the cached descriptor.
      CTRD_ASSIGN_OR_RETURN(const os::UniqueFd upper_parent, open_parent(split.parent));
      return copy_node(lower_parent.get(), upper_parent.get(), base, st);
    }
    return errdefs::NotFound("hard link target " + path + " not found in this layer or its parents");
  }

  errdefs::Status copy_node(int from_dir, int to_dir, const std::string& base, const struct stat& st) {
    const char* name = base.c_str();
    if (S_ISREG(st.st_mode)) {
      const int in = ::openat(from_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (in < 0) return errno_status(errno, "open lower", base);
      os::UniqueFd src(in);
      const int out = ::openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (out < 0) return errno_status(errno, "copy up", base);
      os::UniqueFd dst(out);
      CTRD_RETURN_IF_ERROR(copy_data(in, out, base));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      const ssize_t n = ::readlinkat(from_dir, name, target.data(), target.size());
      if (n < 0) return errno_status(errno, "read link", base);
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), to_dir, name) != 0) return errno_status(errno, "copy up", base);
    } else {
      if (::mknodat(to_dir, name, st.st_mode, st.st_rdev) != 0) return errno_status(errno, "copy up", base);
    }
    if (::fchownat(to_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
      return errno_status(errno, "chown", base);
    CTRD_ASSIGN_OR_RETURN(const std::vector<fs::Xattr> xattrs, fs::list_xattrs(from_dir, base));
    const std::string to_path = fs::proc_path(to_dir, base);
    for (const fs::Xattr& x : xattrs) {
      if (x.name.starts_with(kOverlayXattrPrefix)) continue;
      if (::lsetxattr(to_path.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0 &&
          errno != ENOTSUP && errno != EPERM)
        return errno_status(errno, "set xattr " + x.name + " on", base);
    }
    if (!S_ISLNK(st.st_mode) && ::fchmodat(to_dir, name, st.st_mode & 07777, 0) != 0)
      return errno_status(errno, "chmod", base);
    const timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(to_dir, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
      return errno_status(errno, "set times of", base);
    return errdefs::Status::Ok();
  }

  static errdefs::Status copy_data(int in, int out, const std::string& name) {
    for (;;) {
      const ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size_t{1} << 30, 0);
      if (n == 0) return errdefs::Status::Ok();
      if (n > 0) continue;
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
        return errno_status(errno, "copy", name);
      break;
    }
    std::vector<char> buf(size_t{1} << 20);
    for (;;) {
      const ssize_t n = ::read(in, buf.data(), buf.size());
      if (n == 0) return errdefs::Status::Ok();
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status(errno, "read", name);
      }
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0) {
          if (errno == EINTR) continue;
          return errno_status(errno, "write", name);
        }
        done += w;
      }
    }
  }

  // ---- metadata -----------------------------------------------------------

  errdefs::Status set_metadata(int parent, archive_entry* entry) {
    const char* base = base_.c_str();
    if (::fchownat(parent, base, archive_entry_uid(entry), archive_entry_gid(entry), AT_SYMLINK_NOFOLLOW) !=
        0)
      return errno_status(errno, "chown", name_);
    struct stat st {};
    if (::fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno_status(errno, "stat", name_);
    const bool symlink = S_ISLNK(st.st_mode);
    CTRD_RETURN_IF_ERROR(
        set_xattrs(-1, fs::proc_path(parent, base_), entry, S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)));
    // fchmodat cannot leave a symlink alone (no AT_SYMLINK_NOFOLLOW on
    // Linux), and a symlink's mode means nothing anyway.
    if (!symlink && ::fchmodat(parent, base, archive_entry_perm(entry) & 07777, 0) != 0)
      return errno_status(errno, "chmod", name_);
    const Times t = times_of(entry);
    if (S_ISDIR(st.st_mode)) {
      // Creating the children would move these; set them at the end.
      dir_times_.push_back({name_, t});
      return errdefs::Status::Ok();
    }
    if (::utimensat(parent, base, t.ts, AT_SYMLINK_NOFOLLOW) != 0)
      return errno_status(errno, "set times of", name_);
    return errdefs::Status::Ok();
  }

  // Through `fd` when there is one (a regular file being written), else
  // through `path` without following its last component.
  errdefs::Status set_xattrs(int fd, const std::string& path, archive_entry* entry, bool regular_or_dir) {
    if (archive_entry_xattr_reset(entry) == 0) return errdefs::Status::Ok();
    const char* key = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(entry, &key, &value, &size) == ARCHIVE_OK) {
      const std::string_view name = key;
      // An overlay upper dir's own markers come from whiteouts, never from content.
      if (options_.whiteouts == ApplyOptions::Whiteouts::kOverlay && name.starts_with(kOverlayXattrPrefix))
        continue;
      const int rc =
          fd >= 0 ? ::fsetxattr(fd, key, value, size, 0) : ::lsetxattr(path.c_str(), key, value, size, 0);
      if (rc == 0) continue;
      if (errno == ENOTSUP) continue;  // the file system has no such namespace
      // user.* is only allowed on regular files and directories.
      if (errno == EPERM && name.starts_with("user.") && !regular_or_dir) continue;
      return errno_status(errno, "set xattr " + std::string(name) + " on", name_);
    }
    return errdefs::Status::Ok();
  }

  errdefs::Status apply_dir_times() {
    for (const DirTimes& d : dir_times_) {
      const fs::Split split = fs::split(d.name);
      os::UniqueFd parent;
      const int err = fs::open_in_root_raw(root_.get(), split.parent, O_PATH | O_DIRECTORY, parent);
      if (err == ENOENT || err == ENOTDIR) continue;  // removed by a later whiteout
      if (err != 0) return errno_status(err, "open parent of", d.name);
      const std::string base(split.base);
      if (::utimensat(parent.get(), base.c_str(), d.times.ts, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
        return errno_status(errno, "set times of", d.name);
    }
    return errdefs::Status::Ok();
  }

  // ---- whiteouts ----------------------------------------------------------

  errdefs::Status apply_whiteout(std::string_view parent_name, archive_entry* entry) {
    const bool overlay = options_.whiteouts == ApplyOptions::Whiteouts::kOverlay;
    CTRD_ASSIGN_OR_RETURN(const int parent, parent_dir(parent_name));
    if (base_ == kOpaqueMarker) {
      if (overlay) {
        const int fd = ::openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return errno_status(errno, "open", parent_name);
        os::UniqueFd dir(fd);
        if (::fsetxattr(fd, kOpaqueXattr, "y", 1, 0) != 0)
          return errno_status(errno, "mark opaque", parent_name.empty() ? "/" : parent_name);
        return errdefs::Status::Ok();
      }
      invalidate_cache();
      return prune(parent, std::string(parent_name));
    }
    if (std::string_view(base_).starts_with(kWhiteoutMetaPrefix))
      return errdefs::Status::Ok();  // aufs metadata

    const std::string target = base_.substr(kWhiteoutPrefix.size());
    if (target.empty() || target == "." || target == "..")
      return errdefs::InvalidArgument("invalid whiteout name " + base_);
    invalidate_cache();
    CTRD_RETURN_IF_ERROR(fs::remove_all(parent, target));
    if (!overlay) return errdefs::Status::Ok();
    if (::mknodat(parent, target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
      return errno_status(errno, "create whiteout for", target);
    if (::fchownat(parent, target.c_str(), archive_entry_uid(entry), archive_entry_gid(entry),
                   AT_SYMLINK_NOFOLLOW) != 0)
      return errno_status(errno, "chown whiteout for", target);
    return errdefs::Status::Ok();
  }

  // Removes from the directory everything this layer did not put there.
  errdefs::Status prune(int dir_fd, const std::string& dir_name) {
    CTRD_ASSIGN_OR_RETURN(const std::vector<std::string> names, fs::list_dir(dir_fd));
    for (const std::string& name : names) {
      std::string path = dir_name;
      if (!path.empty()) path += '/';
      path += name;
      if (!applied_.contains(path)) {
        CTRD_RETURN_IF_ERROR(fs::remove_all(dir_fd, name));
        continue;
      }
      const int fd = ::openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP) continue;
        return errno_status(errno, "open", path);
      }
      os::UniqueFd child(fd);
      CTRD_RETURN_IF_ERROR(prune(fd, path));
    }
    return errdefs::Status::Ok();
  }

  struct DirTimes {
    std::string name;
    Times times;
  };

  TarReader tar_;
  const ApplyOptions& options_;
  os::UniqueFd root_;
  std::vector<os::UniqueFd> lowers_;
  std::string name_;  // the current entry, clean
  std::string base_;  // its last component
  std::string cached_parent_;
  os::UniqueFd cached_fd_;
  bool cache_valid_ = false;
  std::unordered_set<std::string> applied_;
  std::vector<DirTimes> dir_times_;
};

}  // namespace

errdefs::StatusOr<ApplyResult> apply(Reader& tar, const std::string& root, const ApplyOptions& options) {
  Applier applier(tar, options);
  return applier.run(root);
}

}  // namespace ctrd::archive
