// services/containers: containers as containerd's API defines them.
//   io.containerd.service.v1.containers-service — the metadata store's
//     containers, publishing /containers/create, /containers/update and
//     /containers/delete;
//   io.containerd.grpc.v1.containers            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "events/exchange.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::containers {

class ContainersService {
 public:
  ContainersService(std::shared_ptr<metadata::DB> db, std::shared_ptr<ctrd::events::Exchange> events)
      : db_(std::move(db)), events_(std::move(events)) {}

  errdefs::StatusOr<metadata::Container> get(const std::string& ns, const std::string& id);
  errdefs::StatusOr<std::vector<metadata::Container>> list(const std::string& ns,
                                                           const std::vector<std::string>& filters);
  errdefs::StatusOr<metadata::Container> create(const std::string& ns, const metadata::Container& c);
  errdefs::StatusOr<metadata::Container> update(const std::string& ns, const metadata::Container& c,
                                                const std::vector<std::string>& paths);
  errdefs::Status remove(const std::string& ns, const std::string& id);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<ctrd::events::Exchange> events_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::containers
