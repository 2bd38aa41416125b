// services/leases: leases as containerd's API defines them.
//   io.containerd.service.v1.leases-service — create (with a generated id when
//     none is given), delete, list and the resources a lease holds;
//   io.containerd.grpc.v1.leases            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::leases {

class Service {
 public:
  explicit Service(std::shared_ptr<metadata::DB> db) : db_(std::move(db)) {}

  // An empty id gets a generated one, "<nanoseconds>-<random>" like containerd's.
  errdefs::StatusOr<metadata::Lease> create(const std::string& ns, std::string id,
                                            const metadata::Labels& labels);
  // `sync` would wait for garbage collection; resources are released at once
  // here, so both forms return after the lease is gone.
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
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::leases
