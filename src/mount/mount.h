// mount: mounting what snapshotters describe (containerd's mount.Mount) —
// overlay, bind and other filesystems — and unmounting it again.
//
// A Mount is data: snapshotters return them, the differ and clients mount
// them. Overlay mounts whose option string would exceed a page (many lower
// directories) are mounted from the lower directories' common parent with
// relative paths, in a child process so the daemon's working directory never
// changes (containerd #2497: with absolute paths only ~60 layers fit).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::mount {

struct Mount {
  std::string type;    // "overlay", "bind", ...
  std::string source;  // device or directory
  std::string target;  // sub-path below the mount point; empty for the mount point itself
  std::vector<std::string> options;
  bool operator==(const Mount&) const = default;
};

// Mounts every entry of `mounts` in order onto `target` (an existing directory).
// "bind" / "rbind" as types or options become MS_BIND[|MS_REC]; "ro" and
// the other flag words become mount flags; the rest is the data string.
// On failure, whatever was mounted by this call is unmounted again.
errdefs::Status mount_all(const std::vector<Mount>& mounts, const std::string& target);

// Unmounts `target`, and any mounts stacked on it. Not mounted is not an error.
errdefs::Status unmount_all(const std::string& target);

// The value of "<key>=" in an overlay option list, e.g. "upperdir"; empty when absent.
std::string option_value(const Mount& m, std::string_view key);
// overlay's lowerdir list, top-most first.
std::vector<std::string> overlay_lowerdirs(const Mount& m);

// A temporary directory under `parent` with `mounts` mounted on it; unmounted
// and removed when destroyed (the destructor retries a busy unmount lazily).
class TempMount {
 public:
  static errdefs::StatusOr<TempMount> create(const std::string& parent, const std::vector<Mount>& mounts);
  TempMount(TempMount&& other) noexcept;
  TempMount& operator=(TempMount&&) = delete;
  TempMount(const TempMount&) = delete;
  TempMount& operator=(const TempMount&) = delete;
  ~TempMount();

  const std::string& path() const { return path_; }
  // Unmounts and removes now, reporting failure (the destructor only logs).
  errdefs::Status release();

 private:
  explicit TempMount(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace ctrd::mount
