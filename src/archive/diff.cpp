// write_diff(): a walk of the upper tree (and, for whole trees, the lower one
// beside it) in lexical order, emitting what changed as PAX tar entries.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "archive/archive.h"
#include "archive/fs_at.h"
#include "archive/tar_stream.h"

namespace ctrd::archive {
namespace {

constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";

errdefs::Status errno_status(int err, std::string_view what, std::string_view name) {
  return errdefs::FromErrno(err, std::string(what) + " " + std::string(name));
}

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// Xattrs that describe this host or the overlay mount, not the layer content.
bool layer_xattr(std::string_view name) {
  return !name.starts_with(kOverlayXattrPrefix) && name != "security.selinux";
}

errdefs::StatusOr<std::vector<fs::Xattr>> layer_xattrs(int dir_fd, const std::string& name) {
  CTRD_ASSIGN_OR_RETURN(std::vector<fs::Xattr> all, fs::list_xattrs(dir_fd, name));
  std::vector<fs::Xattr> out;
  for (fs::Xattr& x : all)
    if (layer_xattr(x.name)) out.push_back(std::move(x));
  return out;
}

errdefs::StatusOr<std::string> read_link(int dir_fd, const std::string& name, const struct stat& st) {
  std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
  const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
  if (n < 0) return errno_status(errno, "read link", name);
  target.resize(static_cast<size_t>(n));
  return target;
}

errdefs::StatusOr<os::UniqueFd> open_child_dir(int dir_fd, const std::string& name) {
  const int fd = ::openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "open directory", name);
  return os::UniqueFd(fd);
}

class DiffWalker {
 public:
  DiffWalker(Writer& out, ApplyOptions::Whiteouts kind)
      : tar_(out), kind_(kind), buffer_(size_t{1} << 20), entry_(new_entry()) {}

  errdefs::Status run(const std::string& lower, const std::string& upper) {
    if (!entry_) return errdefs::ResourceExhausted("tar: cannot allocate an entry");
    const int upper_fd = ::open(upper.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (upper_fd < 0) return errno_status(errno, "open upper", upper);
    const os::UniqueFd upper_dir(upper_fd);
    os::UniqueFd lower_dir;
    if (kind_ == ApplyOptions::Whiteouts::kRemove && !lower.empty()) {
      const int fd = ::open(lower.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return errno_status(errno, "open lower", lower);
      lower_dir.reset(fd);
    }
    CTRD_RETURN_IF_ERROR(tar_.open());
    if (kind_ == ApplyOptions::Whiteouts::kOverlay) {
      CTRD_RETURN_IF_ERROR(walk_overlay(upper_dir.get(), ""));
    } else {
      CTRD_RETURN_IF_ERROR(walk_trees(lower_dir.valid() ? lower_dir.get() : -1, upper_dir.get(), ""));
    }
    return tar_.close();
  }

 private:
  // An ancestor of the entries being walked, written only once something
  // inside it is (so an applier meets parents before children).
  struct Frame {
    int parent_fd;
    std::string name;
    std::string path;
    struct stat st;
    bool written;
  };

  errdefs::Status walk_trees(int lower_dir, int upper_dir, const std::string& dir) {
    CTRD_ASSIGN_OR_RETURN(const std::vector<std::string> uppers, fs::list_dir(upper_dir));
    std::vector<std::string> lowers;
    if (lower_dir >= 0) {
      CTRD_ASSIGN_OR_RETURN(lowers, fs::list_dir(lower_dir));
    }
    size_t i = 0;
    size_t j = 0;
    while (i < lowers.size() || j < uppers.size()) {
      if (j == uppers.size() || (i < lowers.size() && lowers[i] < uppers[j])) {
        CTRD_RETURN_IF_ERROR(write_whiteout(dir, lowers[i]));  // a removed directory is one whiteout
        ++i;
        continue;
      }
      const std::string& name = uppers[j];
      const bool in_lower = i < lowers.size() && lowers[i] == name;
      const std::string path = join(dir, name);
      struct stat ust {};
      if (::fstatat(upper_dir, name.c_str(), &ust, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_status(errno, "stat", path);
      bool changed = true;
      bool descend_lower = false;
      if (in_lower) {
        struct stat lst {};
        if (::fstatat(lower_dir, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0)
          return errno_status(errno, "stat lower", path);
        if ((lst.st_mode & S_IFMT) == (ust.st_mode & S_IFMT)) {
          CTRD_ASSIGN_OR_RETURN(const bool same, same_file(lower_dir, upper_dir, name, lst, ust));
          changed = !same;
          descend_lower = S_ISDIR(ust.st_mode);
        }
        ++i;
      }
      ++j;
      if (changed) CTRD_RETURN_IF_ERROR(write_entry(upper_dir, name, path, ust));
      if (!S_ISDIR(ust.st_mode)) continue;

      CTRD_ASSIGN_OR_RETURN(const os::UniqueFd upper_child, open_child_dir(upper_dir, name));
      os::UniqueFd lower_child;
      if (descend_lower) {
        CTRD_ASSIGN_OR_RETURN(lower_child, open_child_dir(lower_dir, name));
      }
      frames_.push_back({upper_dir, name, path, ust, changed});
      errdefs::Status status = walk_trees(descend_lower ? lower_child.get() : -1, upper_child.get(), path);
      frames_.pop_back();
      CTRD_RETURN_IF_ERROR(status);
    }
    return errdefs::Status::Ok();
  }

  errdefs::StatusOr<bool> same_file(int lower_dir, int upper_dir, const std::string& name,
                                    const struct stat& a, const struct stat& b) {
    if (a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid) return false;
    if (a.st_mtim.tv_sec != b.st_mtim.tv_sec || a.st_mtim.tv_nsec != b.st_mtim.tv_nsec) return false;
    if (S_ISREG(a.st_mode) && a.st_size != b.st_size) return false;
    if ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev) return false;
    if (S_ISLNK(a.st_mode)) {
      CTRD_ASSIGN_OR_RETURN(const std::string la, read_link(lower_dir, name, a));
      CTRD_ASSIGN_OR_RETURN(const std::string lb, read_link(upper_dir, name, b));
      if (la != lb) return false;
    }
    CTRD_ASSIGN_OR_RETURN(const std::vector<fs::Xattr> xa, layer_xattrs(lower_dir, name));
    CTRD_ASSIGN_OR_RETURN(const std::vector<fs::Xattr> xb, layer_xattrs(upper_dir, name));
    if (xa.size() != xb.size()) return false;
    for (size_t k = 0; k < xa.size(); ++k)
      if (xa[k].name != xb[k].name || xa[k].value != xb[k].value) return false;
    return true;
  }

  errdefs::Status walk_overlay(int upper_dir, const std::string& dir) {
    CTRD_ASSIGN_OR_RETURN(const std::vector<std::string> names, fs::list_dir(upper_dir));
    for (const std::string& name : names) {
      const std::string path = join(dir, name);
      struct stat st {};
      if (::fstatat(upper_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_status(errno, "stat", path);
      if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {  // overlayfs records a deletion as a 0/0 char device
        CTRD_RETURN_IF_ERROR(write_whiteout(dir, name));
        continue;
      }
      CTRD_RETURN_IF_ERROR(write_entry(upper_dir, name, path, st));
      if (!S_ISDIR(st.st_mode)) continue;
      char value[2];
      const ssize_t n =
          ::lgetxattr(fs::proc_path(upper_dir, name).c_str(), "trusted.overlay.opaque", value, sizeof(value));
      if (n == 1 && value[0] == 'y') CTRD_RETURN_IF_ERROR(write_marker(join(path, ".wh..wh..opq")));
      CTRD_ASSIGN_OR_RETURN(const os::UniqueFd child, open_child_dir(upper_dir, name));
      frames_.push_back({upper_dir, name, path, st, true});
      errdefs::Status status = walk_overlay(child.get(), path);
      frames_.pop_back();
      CTRD_RETURN_IF_ERROR(status);
    }
    return errdefs::Status::Ok();
  }

  errdefs::Status write_parents() {
    for (Frame& frame : frames_) {
      if (frame.written) continue;
      frame.written = true;
      CTRD_RETURN_IF_ERROR(write_header_for(frame.parent_fd, frame.name, frame.path, frame.st));
    }
    return errdefs::Status::Ok();
  }

  errdefs::Status write_whiteout(const std::string& dir, const std::string& name) {
    return write_marker(join(dir, ".wh." + name));
  }

  // An empty regular file whose name is its meaning (whiteout, opaque marker).
  errdefs::Status write_marker(const std::string& path) {
    CTRD_RETURN_IF_ERROR(write_parents());
    archive_entry* e = entry_.get();
    archive_entry_clear(e);
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0);
    archive_entry_set_size(e, 0);
    archive_entry_set_mtime(e, 0, 0);
    return tar_.write_header(e);
  }

  errdefs::Status write_entry(int dir_fd, const std::string& name, const std::string& path,
                              const struct stat& st) {
    if (S_ISSOCK(st.st_mode)) return errdefs::Status::Ok();  // sockets are not layer content
    CTRD_RETURN_IF_ERROR(write_parents());
    return write_header_for(dir_fd, name, path, st);
  }

  errdefs::Status write_header_for(int dir_fd, const std::string& name, const std::string& path,
                                   const struct stat& st) {
    archive_entry* e = entry_.get();
    archive_entry_clear(e);
    archive_entry_set_pathname(e, S_ISDIR(st.st_mode) ? (path + "/").c_str() : path.c_str());
    archive_entry_set_mode(e, st.st_mode);
    archive_entry_set_uid(e, st.st_uid);
    archive_entry_set_gid(e, st.st_gid);
    // Whole seconds, as containerd writes them: ustar holds no more.
    archive_entry_set_mtime(e, st.st_mtim.tv_sec, 0);
    bool with_data = false;
    if (S_ISREG(st.st_mode)) {
      archive_entry_set_size(e, st.st_size);
      with_data = st.st_size > 0;
      if (st.st_nlink > 1) {
        auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, path);
        if (!first) {
          archive_entry_set_hardlink(e, it->second.c_str());
          archive_entry_set_size(e, 0);
          with_data = false;
        }
      }
    } else if (S_ISLNK(st.st_mode)) {
      CTRD_ASSIGN_OR_RETURN(const std::string target, read_link(dir_fd, name, st));
      archive_entry_set_symlink(e, target.c_str());
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_rdevmajor(e, major(st.st_rdev));
      archive_entry_set_rdevminor(e, minor(st.st_rdev));
    }
    CTRD_ASSIGN_OR_RETURN(const std::vector<fs::Xattr> xattrs, layer_xattrs(dir_fd, name));
    for (const fs::Xattr& x : xattrs)
      archive_entry_xattr_add_entry(e, x.name.c_str(), x.value.data(), x.value.size());
    CTRD_RETURN_IF_ERROR(tar_.write_header(e));
    if (!with_data) return errdefs::Status::Ok();
    return write_file_data(dir_fd, name, path, st.st_size);
  }

  errdefs::Status write_file_data(int dir_fd, const std::string& name, const std::string& path, off_t size) {
    const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, "open", path);
    const os::UniqueFd file(fd);
    off_t left = size;
    while (left > 0) {
      const ssize_t n =
          ::read(fd, buffer_.data(), std::min<size_t>(buffer_.size(), static_cast<size_t>(left)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status(errno, "read", path);
      }
      // A file that shrank while being read: libarchive pads the entry with zeros.
      if (n == 0) break;
      CTRD_RETURN_IF_ERROR(tar_.write_data(buffer_.data(), static_cast<size_t>(n)));
      left -= n;
    }
    return errdefs::Status::Ok();
  }

  TarWriter tar_;
  ApplyOptions::Whiteouts kind_;
  std::vector<char> buffer_;
  UniqueEntry entry_;
  std::vector<Frame> frames_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

errdefs::Status write_diff(const std::string& lower, const std::string& upper, const DiffOptions& options,
                           Writer& out) {
  DiffWalker walker(out, options.upper_kind);
  return walker.run(lower, upper);
}

}  // namespace ctrd::archive
