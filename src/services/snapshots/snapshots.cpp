#include "services/snapshots/snapshots.h"

#include <github.com/containerd/containerd/api/events/snapshot.pb.h>

#include "events/publish.h"

namespace ctrd::services::snapshots {

errdefs::StatusOr<std::shared_ptr<sn::Snapshotter>> SnapshotsService::snapshotter(const Scope& s) const {
  if (s.snapshotter.empty()) return errdefs::InvalidArgument("snapshotter argument missing");
  auto backend = db_->snapshotter(s.ns, s.snapshotter, s.lease);
  if (errdefs::IsNotFound(backend.status())) {
    return errdefs::InvalidArgument("snapshotter not loaded: " + s.snapshotter);
  }
  return backend;
}

errdefs::StatusOr<std::vector<mount::Mount>> SnapshotsService::prepare(const Scope& s, const std::string& key,
                                                                       const std::string& parent,
                                                                       const sn::Labels& labels) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  CTRD_ASSIGN_OR_RETURN(auto mounts, backend->prepare(key, parent, labels));
  containerd::events::SnapshotPrepare ev;
  ev.set_key(key);
  ev.set_parent(parent);
  (void)ctrd::events::publish(*events_, s.ns, "/snapshot/prepare", ev);
  return mounts;
}

errdefs::StatusOr<std::vector<mount::Mount>> SnapshotsService::view(const Scope& s, const std::string& key,
                                                                    const std::string& parent,
                                                                    const sn::Labels& labels) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  return backend->view(key, parent, labels);
}

errdefs::StatusOr<std::vector<mount::Mount>> SnapshotsService::mounts(const Scope& s,
                                                                      const std::string& key) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  return backend->mounts(key);
}

errdefs::Status SnapshotsService::commit(const Scope& s, const std::string& name, const std::string& key,
                                         const sn::Labels& labels) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  CTRD_RETURN_IF_ERROR(backend->commit(name, key, labels));
  containerd::events::SnapshotCommit ev;
  ev.set_key(key);
  ev.set_name(name);
  (void)ctrd::events::publish(*events_, s.ns, "/snapshot/commit", ev);
  return errdefs::Status::Ok();
}

errdefs::Status SnapshotsService::remove(const Scope& s, const std::string& key) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  CTRD_RETURN_IF_ERROR(backend->remove(key));
  containerd::events::SnapshotRemove ev;
  ev.set_key(key);
  (void)ctrd::events::publish(*events_, s.ns, "/snapshot/remove", ev);
  return errdefs::Status::Ok();
}

errdefs::StatusOr<sn::Info> SnapshotsService::stat(const Scope& s, const std::string& key) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  return backend->stat(key);
}

errdefs::StatusOr<sn::Info> SnapshotsService::update(const Scope& s, const sn::Info& info,
                                                     const std::vector<std::string>& paths) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  return backend->update(info, paths);
}

errdefs::StatusOr<std::vector<sn::Info>> SnapshotsService::list(const Scope& s,
                                                                const std::vector<std::string>& filters) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  std::vector<sn::Info> all;
  CTRD_RETURN_IF_ERROR(backend->walk(
      [&](const sn::Info& info) {
        all.push_back(info);
        return errdefs::Status::Ok();
      },
      filters));
  return all;
}

errdefs::StatusOr<sn::Usage> SnapshotsService::usage(const Scope& s, const std::string& key) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  return backend->usage(key);
}

errdefs::Status SnapshotsService::cleanup(const Scope& s) {
  CTRD_ASSIGN_OR_RETURN(auto backend, snapshotter(s));
  return backend->cleanup();
}

}  // namespace ctrd::services::snapshots
