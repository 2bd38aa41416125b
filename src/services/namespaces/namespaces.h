// services/namespaces: namespaces as containerd's API defines them.
//   io.containerd.service.v1.namespaces-service — semantics over the metadata
//     store, publishing /namespaces/create, /namespaces/update, /namespaces/delete;
//   io.containerd.grpc.v1.namespaces            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "events/exchange.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::namespaces {

class Service {
 public:
  Service(std::shared_ptr<metadata::DB> db, std::shared_ptr<ctrd::events::Exchange> events)
      : db_(std::move(db)), events_(std::move(events)) {}

  // As containerd: a namespace that does not exist has no labels (not an error).
  errdefs::StatusOr<metadata::Namespace> get(const std::string& name);
  errdefs::StatusOr<std::vector<metadata::Namespace>> list();
  errdefs::StatusOr<metadata::Namespace> create(const metadata::Namespace& ns);
  // Paths "labels.<key>" set (or, with no value, delete) that label; no paths
  // replace all labels; anything else is InvalidArgument.
  errdefs::StatusOr<metadata::Namespace> update(const metadata::Namespace& ns,
                                                const std::vector<std::string>& paths);
  errdefs::Status remove(const std::string& name);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<ctrd::events::Exchange> events_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::namespaces
