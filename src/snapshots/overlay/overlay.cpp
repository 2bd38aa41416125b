#include "snapshots/overlay/overlay.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "snapshots/fs.h"

namespace ctrd::snapshots::overlay {

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

Status check_supported(const std::string& root) {
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return errdefs::FromErrno(errno, "create " + root);
  std::string temp = root + "/overlay-check-XXXXXX";
  if (::mkdtemp(temp.data()) == nullptr) return errdefs::FromErrno(errno, "create check dir in " + root);
  Status result = [&]() -> Status {
    for (const char* sub : {"/lower", "/upper", "/work", "/merged"})
      CTRD_RETURN_IF_ERROR(make_dir(temp + sub, 0755));
    std::string options = "lowerdir=" + temp + "/lower,upperdir=" + temp + "/upper,workdir=" + temp + "/work";
    std::string merged = temp + "/merged";
    if (::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) != 0) {
      return errdefs::Skip("overlayfs is not supported on " + fs_type_name(root) + " at " + root + ": " +
                           std::strerror(errno));
    }
    if (::umount2(merged.c_str(), 0) != 0 && ::umount2(merged.c_str(), MNT_DETACH) != 0) {
      return errdefs::FromErrno(errno, "unmount overlay check at " + merged);
    }
    return Status::Ok();
  }();
  if (Status s = fs::remove_tree(temp); !s.ok() && result.ok()) return s;
  return result;
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
