// services/leases: leases as containerd's API defines them.
//   io.containerd.service.v1.leases-service — create (with a generated id when
//     none is given), delete, list and the resources a lease holds;
//   io.containerd.grpc.v1.leases            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gc/scheduler.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::leases {

class LeasesService {
 public:
  LeasesService(std::shared_ptr<metadata::DB> db, std::shared_ptr<gc::Scheduler> gc)
      : db_(std::move(db)), gc_(std::move(gc)) {}

  // An empty id gets a generated one, "<nanoseconds>-<random>" like containerd's.
  errdefs::StatusOr<metadata::Lease> create(const std::string& ns, std::string id,
                                            const metadata::Labels& labels);
  // With `sync`, returns once a garbage collection has released what only
  // the lease held.
  errdefs::Status remove(const std::string& ns, const std::string& id, bool sync);
  errdefs::StatusOr<std::vector<metadata::Lease>> list(const std::string& ns,
                                                       const std::vector<std::string>& filters);
  errdefs::Status add_resource(const std::string& ns, const std::string& id,
                               const metadata::LeaseResource& r);
  errdefs::Status delete_resource(const std::string& ns, const std::string& id,
                                  const metadata::LeaseResource& r);
  errdefs::StatusOr<std::vector<metadata::LeaseResource>> list_resources(const std::string& ns,
                                                                         const std::string& id);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<gc::Scheduler> gc_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::leases
