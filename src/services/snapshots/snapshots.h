// services/snapshots: snapshots as containerd's API defines them.
//   io.containerd.service.v1.snapshots-service — picks the snapshotter by name
//     and the namespace's view of it (metadata store), publishing
//     /snapshot/prepare, /snapshot/commit and /snapshot/remove;
//   io.containerd.grpc.v1.snapshots            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "events/exchange.h"
#include "metadata/db.h"
#include "mount/mount.h"
#include "plugin/plugin.h"
#include "snapshots/snapshotter.h"

namespace ctrd::services::snapshots {

namespace sn = ctrd::snapshots;

// Who is asking: the namespace, the lease (may be empty) and the snapshotter.
struct Scope {
  std::string ns;
  std::string lease;
  std::string snapshotter;
};

class SnapshotsService {
 public:
  SnapshotsService(std::shared_ptr<metadata::DB> db, std::shared_ptr<ctrd::events::Exchange> events)
      : db_(std::move(db)), events_(std::move(events)) {}

  errdefs::StatusOr<std::vector<mount::Mount>> prepare(const Scope& s, const std::string& key,
                                                       const std::string& parent, const sn::Labels& labels);
  errdefs::StatusOr<std::vector<mount::Mount>> view(const Scope& s, const std::string& key,
                                                    const std::string& parent, const sn::Labels& labels);
  errdefs::StatusOr<std::vector<mount::Mount>> mounts(const Scope& s, const std::string& key);
  errdefs::Status commit(const Scope& s, const std::string& name, const std::string& key,
                         const sn::Labels& labels);
  errdefs::Status remove(const Scope& s, const std::string& key);
  errdefs::StatusOr<sn::Info> stat(const Scope& s, const std::string& key);
  errdefs::StatusOr<sn::Info> update(const Scope& s, const sn::Info& info,
                                     const std::vector<std::string>& paths);
  errdefs::StatusOr<std::vector<sn::Info>> list(const Scope& s, const std::vector<std::string>& filters);
  errdefs::StatusOr<sn::Usage> usage(const Scope& s, const std::string& key);
  errdefs::Status cleanup(const Scope& s);

  // The namespace's view of a snapshotter, as every caller inside the daemon
  // should use it. InvalidArgument when the name is empty or not loaded.
  errdefs::StatusOr<std::shared_ptr<sn::Snapshotter>> snapshotter(const Scope& s) const;

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<ctrd::events::Exchange> events_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::snapshots
