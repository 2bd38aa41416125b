#include "snapshots/overlay/overlay.h"

#include <dirent.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>
#include <thread>
#include <utility>

#include "os/dirs.h"
#include "os/fs.h"

namespace ctrd::snapshots::overlay {

namespace fs = os::fs;

using errdefs::Status;
using errdefs::StatusOr;

namespace {

std::string fs_type_name(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return "unknown filesystem";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53:
      return "extfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0x6969:
      return "nfs";
    default:
      break;
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(st.f_type));
  return std::string("filesystem ") + hex;
}

Status make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) return errdefs::FromErrno(errno, "create " + path);
  return Status::Ok();
}

}  // namespace

namespace {

constexpr std::string_view kCheckPrefix = "overlay-check-";
constexpr std::string_view kSupportedMarker = "overlay-supported";

// What a past check's answer depends on: the kernel and the filesystem under root.
std::string check_identity(const std::string& root) {
  struct utsname uts {};
  struct statfs sfs {};
  struct stat st {};
  if (::uname(&uts) != 0 || ::statfs(root.c_str(), &sfs) != 0 || ::stat(root.c_str(), &st) != 0) return "";
  return std::string(uts.release) + " " + std::to_string(static_cast<unsigned long>(sfs.f_type)) + " " +
         std::to_string(static_cast<unsigned long>(st.st_dev)) + "\n";
}

std::string read_marker(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Builds an overlay superblock from `dir`'s lower, upper and work dirs with
// the new mount API, without attaching it anywhere: nothing is mounted, so
// there is nothing to unmount (an unmount costs 2-12 ms here; the daemon's
// start-up is ~10). Returns the fs context fd, or -1 with errno.
int create_overlay_superblock(const std::string& dir) {
  int fd = static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC));
  if (fd < 0) return -1;
  const std::string lower = dir + "/lower", upper = dir + "/upper", work = dir + "/work";
  for (auto [key, value] : {std::pair{"lowerdir", &lower}, {"upperdir", &upper}, {"workdir", &work}}) {
    if (::syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, key, value->c_str(), 0) != 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return -1;
    }
  }
  if (::syscall(SYS_fsconfig, fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// The classic check, for kernels without fsopen: mount and unmount.
int mount_check(const std::string& dir) {
  const std::string merged = dir + "/merged";
  if (::mkdir(merged.c_str(), 0755) != 0) return -1;
  const std::string options =
      "lowerdir=" + dir + "/lower,upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  if (::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) != 0) return -1;
  if (::umount2(merged.c_str(), 0) != 0) ::umount2(merged.c_str(), MNT_DETACH);
  return 0;
}

}  // namespace

Status check_supported(const std::string& root, std::jthread* teardown) {
  CTRD_RETURN_IF_ERROR(os::ensure_dir(root, 0700));
  const std::string marker = root + "/" + std::string(kSupportedMarker);
  const std::string identity = check_identity(root);
  // A check already passed for this kernel and filesystem: nothing to try again.
  if (!identity.empty() && read_marker(marker) == identity) return Status::Ok();

  // Checks interrupted by a crash left their directories behind.
  if (DIR* d = ::opendir(root.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      if (std::string_view(e->d_name).starts_with(kCheckPrefix))
        (void)fs::remove_tree(root + "/" + e->d_name);
    }
    ::closedir(d);
  }
  std::string temp = root + "/" + std::string(kCheckPrefix) + "XXXXXX";
  if (::mkdtemp(temp.data()) == nullptr) return errdefs::FromErrno(errno, "create check dir in " + root);
  for (const char* sub : {"/lower", "/upper", "/work"}) {
    if (Status s = make_dir(temp + sub, 0755); !s.ok()) {
      (void)fs::remove_tree(temp);
      return s;
    }
  }
  int fd = create_overlay_superblock(temp);
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) fd = mount_check(temp);
  if (fd < 0) {
    const int err = errno;
    (void)fs::remove_tree(temp);
    return errdefs::Skip("overlayfs is not supported on " + fs_type_name(root) + " at " + root + ": " +
                         std::strerror(err));
  }
  if (!identity.empty()) {
    std::ofstream(marker + ".tmp") << identity;
    ::rename((marker + ".tmp").c_str(), marker.c_str());
  }
  auto tear_down = [fd, temp] {
    if (fd > 0) ::close(fd);
    (void)fs::remove_tree(temp);
  };
  if (teardown != nullptr) {
    *teardown = std::jthread(std::move(tear_down));  // off the start-up path
  } else {
    tear_down();
  }
  return Status::Ok();
}

OverlaySnapshotter::OverlaySnapshotter(std::string root, std::unique_ptr<Metastore> metastore,
                                       Options options, bool index_off)
    : DirSnapshotter(std::move(root), std::move(metastore)), options_(options), index_off_(index_off) {}

StatusOr<std::shared_ptr<OverlaySnapshotter>> OverlaySnapshotter::open(const std::string& root,
                                                                       Options options) {
  CTRD_ASSIGN_OR_RETURN(auto metastore, open_root(root));
  bool index_off = ::access("/sys/module/overlay/parameters/index", F_OK) == 0;
  return std::shared_ptr<OverlaySnapshotter>(
      new OverlaySnapshotter(root, std::move(metastore), options, index_off));
}

Status OverlaySnapshotter::populate(const std::string& dir, Kind /*kind*/,
                                    const std::vector<uint64_t>& /*parent_ids*/) {
  if (::chmod(dir.c_str(), 0700) != 0) return errdefs::FromErrno(errno, "chmod " + dir);
  CTRD_RETURN_IF_ERROR(make_dir(dir + "/fs", 0755));
  return make_dir(dir + "/work", 0711);
}

std::vector<mount::Mount> OverlaySnapshotter::mounts_for(const Snapshot& snapshot) const {
  const auto& parents = snapshot.parent_ids;
  const bool active = snapshot.kind == Kind::kActive;
  if (parents.empty()) {
    return {mount::Mount{.type = "bind",
                         .source = upper_dir(snapshot.id),
                         .target = "",
                         .options = {"rbind", active ? "rw" : "ro"}}};
  }
  // overlayfs needs two lower dirs when there is no upper dir.
  if (!active && parents.size() == 1) {
    return {mount::Mount{
        .type = "bind", .source = upper_dir(parents.front()), .target = "", .options = {"rbind", "ro"}}};
  }
  std::vector<std::string> options;
  if (index_off_) options.emplace_back("index=off");
  if (active) {
    options.push_back("workdir=" + work_dir(snapshot.id));
    options.push_back("upperdir=" + upper_dir(snapshot.id));
  }
  std::string lower = "lowerdir=";
  for (size_t i = 0; i < parents.size(); ++i) {
    if (i > 0) lower.push_back(':');
    lower += upper_dir(parents[i]);
  }
  options.push_back(std::move(lower));
  return {mount::Mount{.type = "overlay", .source = "overlay", .target = "", .options = std::move(options)}};
}

void OverlaySnapshotter::add_labels(const Snapshot& snapshot, Labels& labels) const {
  if (options_.upperdir_label) labels[std::string(kUpperdirLabel)] = upper_dir(snapshot.id);
}

}  // namespace ctrd::snapshots::overlay
