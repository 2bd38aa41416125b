// snapshots: the snapshotter interface (containerd's snapshots.Snapshotter).
//
// A snapshotter keeps filesystem trees by key. Prepare makes an active
// (writable) snapshot on top of an optional committed parent, View a read-only
// one; Commit turns an active snapshot into a committed one under a new name,
// which later snapshots can use as parent. Mounts says how to mount a snapshot.
// Keys here are the backend's own: the metadata store maps each namespace's
// keys onto them, so one backend serves every namespace.
//
// Implementations: snapshots/native (plain directories, copies of the parent)
// and snapshots/overlay (overlayfs). Each keeps its records in a Metastore
// (snapshots/metastore.h) under its root and is safe to use from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "filters/filters.h"
#include "mount/mount.h"

namespace ctrd::snapshots {

using Clock = std::chrono::system_clock;
using Labels = std::map<std::string, std::string>;

// Numbered as containerd's API enum.
enum class Kind { kUnknown = 0, kView = 1, kActive = 2, kCommitted = 3 };
std::string_view kind_name(Kind kind);  // "View", "Active", "Committed", as `ctr snapshots ls` prints

struct Info {
  std::string name;    // the key (active, view) or the committed name
  std::string parent;  // committed parent's name, empty for none
  Kind kind = Kind::kUnknown;
  Labels labels;
  Clock::time_point created_at;
  Clock::time_point updated_at;
};

// A List filter's view of `info`, with containerd's fields: kind ("active",
// "view", "committed"), name, parent and labels.<key>. It refers to `info`.
inline filters::Adaptor filter_fields(const Info& info) {
  return [&info](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    if (path[0] == "kind") {
      switch (info.kind) {
        case Kind::kActive:
          return "active";
        case Kind::kView:
          return "view";
        case Kind::kCommitted:
          return "committed";
        case Kind::kUnknown:
          break;
      }
      return std::nullopt;
    }
    if (path[0] == "name") return info.name;
    if (path[0] == "parent") return info.parent;
    if (path[0] == "labels") {
      std::string key;
      for (size_t i = 1; i < path.size(); ++i) key += (i > 1 ? "." : "") + path[i];
      auto it = info.labels.find(key);
      if (it == info.labels.end()) return std::nullopt;
      return it->second;
    }
    return std::nullopt;
  };
}

struct Usage {
  int64_t size = 0;    // bytes used by this snapshot's own layer
  int64_t inodes = 0;  // inodes used by this snapshot's own layer
};

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;

  // NotFound when `key` does not exist.
  virtual errdefs::StatusOr<Info> stat(std::string_view key) = 0;
  // Updates labels ("labels", "labels.<key>"; all labels when fieldpaths is
  // empty) of the snapshot named info.name.
  virtual errdefs::StatusOr<Info> update(const Info& info, const std::vector<std::string>& fieldpaths) = 0;
  virtual errdefs::StatusOr<Usage> usage(std::string_view key) = 0;
  // Mounts of an active or view snapshot; FailedPrecondition for a committed one.
  virtual errdefs::StatusOr<std::vector<mount::Mount>> mounts(std::string_view key) = 0;
  // AlreadyExists when `key` exists; NotFound when `parent` does not; a parent
  // that is not committed is InvalidArgument.
  virtual errdefs::StatusOr<std::vector<mount::Mount>> prepare(std::string_view key, std::string_view parent,
                                                               const Labels& labels) = 0;
  virtual errdefs::StatusOr<std::vector<mount::Mount>> view(std::string_view key, std::string_view parent,
                                                            const Labels& labels) = 0;
  // Commits active `key` as `name`; `key` is gone afterwards. AlreadyExists
  // when `name` exists; FailedPrecondition when `key` is not active.
  virtual errdefs::Status commit(std::string_view name, std::string_view key, const Labels& labels) = 0;
  // FailedPrecondition when the snapshot has children.
  virtual errdefs::Status remove(std::string_view key) = 0;
  // Every snapshot matching any of `filters` (fields: name, parent, kind,
  // labels.<key>), in key order.
  virtual errdefs::Status walk(const std::function<errdefs::Status(const Info&)>& fn,
                               const std::vector<std::string>& filters) = 0;
  // Removes directories no record refers to (left by a crash mid-operation).
  virtual errdefs::Status cleanup() = 0;
};

}  // namespace ctrd::snapshots
