// snapshotter: the snapshots::Snapshotter a namespace sees (DB::snapshotter) —
// per-namespace keys, parents and labels over one shared backend. Semantics
// are documented on DB::snapshotter; this header exists so the implementation
// can be constructed inside src/metadata.
#pragma once

#include <memory>
#include <string>

#include "errdefs/errdefs.h"
#include "snapshots/snapshotter.h"

namespace ctrd::metadata {

class Storage;
struct SnapshotBackend;

// Labels with this prefix (and the target ref label) are also given to the
// backend; the rest live only in the metadata store, as in containerd.
inline constexpr std::string_view kInheritedLabelsPrefix = "containerd.io/snapshot/";
inline constexpr std::string_view kLabelSnapshotRef = "containerd.io/snapshot.ref";

class NamespacedSnapshotter final : public snapshots::Snapshotter {
 public:
  NamespacedSnapshotter(std::shared_ptr<Storage> storage, std::string ns, std::string name, std::string lease,
                        const SnapshotBackend& backend)
      : storage_(std::move(storage)),
        ns_(std::move(ns)),
        name_(std::move(name)),
        lease_(std::move(lease)),
        backend_(backend) {}

  errdefs::StatusOr<snapshots::Info> stat(std::string_view key) override;
  // Fields: "labels", "labels.<key>"; all labels when empty.
  errdefs::StatusOr<snapshots::Info> update(const snapshots::Info& info,
                                            const std::vector<std::string>& fieldpaths) override;
  errdefs::StatusOr<snapshots::Usage> usage(std::string_view key) override;
  errdefs::StatusOr<std::vector<mount::Mount>> mounts(std::string_view key) override;
  errdefs::StatusOr<std::vector<mount::Mount>> prepare(std::string_view key, std::string_view parent,
                                                       const snapshots::Labels& labels) override;
  errdefs::StatusOr<std::vector<mount::Mount>> view(std::string_view key, std::string_view parent,
                                                    const snapshots::Labels& labels) override;
  errdefs::Status commit(std::string_view name, std::string_view key,
                         const snapshots::Labels& labels) override;
  // Forgets the namespace's record only; the backend snapshot goes at the next collection.
  errdefs::Status remove(std::string_view key) override;
  // Fields: name, parent, kind (active, view, committed), labels.<key>; in key order.
  errdefs::Status walk(const std::function<errdefs::Status(const snapshots::Info&)>& fn,
                       const std::vector<std::string>& filters) override;
  // Nothing to do: the collector cleans the backend.
  errdefs::Status cleanup() override { return errdefs::Status::Ok(); }

 private:
  errdefs::StatusOr<std::vector<mount::Mount>> create(std::string_view key, std::string_view parent,
                                                      const snapshots::Labels& labels, bool readonly);
  // The backend key of the namespace's `key`; NotFound when absent.
  errdefs::StatusOr<std::string> resolve(std::string_view key) const;

  std::shared_ptr<Storage> storage_;
  std::string ns_;
  std::string name_;
  std::string lease_;
  const SnapshotBackend& backend_;  // owned by storage_
};

// The labels a backend is given: the inherited ones.
snapshots::Labels inherited_labels(const snapshots::Labels& labels);

}  // namespace ctrd::metadata
