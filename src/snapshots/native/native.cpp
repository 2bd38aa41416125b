#include "snapshots/native/native.h"

#include <sys/stat.h>

#include <cerrno>

#include "os/fs.h"

namespace ctrd::snapshots::native {

namespace fs = os::fs;

using errdefs::Status;
using errdefs::StatusOr;

StatusOr<std::shared_ptr<NativeSnapshotter>> NativeSnapshotter::open(const std::string& root) {
  CTRD_ASSIGN_OR_RETURN(auto metastore, open_root(root));
  return std::shared_ptr<NativeSnapshotter>(new NativeSnapshotter(root, std::move(metastore)));
}

Status NativeSnapshotter::populate(const std::string& dir, Kind /*kind*/,
                                   const std::vector<uint64_t>& parent_ids) {
  if (parent_ids.empty()) {
    // A fresh root directory, as an image's base layer expects it.
    if (::chmod(dir.c_str(), 0755) != 0) return errdefs::FromErrno(errno, "chmod " + dir);
    return Status::Ok();
  }
  return fs::copy_tree(snapshot_dir(parent_ids.front()), dir);
}

std::vector<mount::Mount> NativeSnapshotter::mounts_for(const Snapshot& snapshot) const {
  return {mount::Mount{.type = "bind",
                       .source = snapshot_dir(snapshot.id),
                       .target = "",
                       .options = {"rbind", snapshot.kind == Kind::kView ? "ro" : "rw"}}};
}

}  // namespace ctrd::snapshots::native
