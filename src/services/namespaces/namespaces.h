// services/namespaces: namespaces as containerd's API defines them.
//   io.containerd.service.v1.namespaces-service — semantics over the metadata
//     store, publishing /namespaces/create, /namespaces/update, /namespaces/delete;
//   io.containerd.grpc.v1.namespaces            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "events/exchange.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::namespaces {

class NamespacesService {
 public:
  NamespacesService(std::shared_ptr<metadata::DB> db, std::shared_ptr<ctrd::events::Exchange> events)
      : db_(std::move(db)), events_(std::move(events)) {}

  // As containerd: a namespace that does not exist has no labels (not an error).
  errdefs::StatusOr<metadata::Namespace> get(const std::string& name);
  errdefs::StatusOr<std::vector<metadata::Namespace>> list();
  // create and update publish their event in the caller's namespace, as
  // containerd does (subscribers filtering on `namespace==` see them there);
  // with no caller namespace, in the namespace acted on instead of failing the
  // call after the change was made.
  errdefs::StatusOr<metadata::Namespace> create(const metadata::Namespace& ns,
                                                std::string_view caller_ns = {});
  // Paths "labels.<key>" set (or, with no value, delete) that label; no paths
  // replace all labels; anything else is InvalidArgument.
  errdefs::StatusOr<metadata::Namespace> update(const metadata::Namespace& ns,
                                                const std::vector<std::string>& paths,
                                                std::string_view caller_ns = {});
  errdefs::Status remove(const std::string& name);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<ctrd::events::Exchange> events_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::namespaces
