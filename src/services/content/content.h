// services/content: the content API as containerd defines it.
//   io.containerd.service.v1.content-service — the metadata store's namespaced
//     content view, publishing /content/delete;
//   io.containerd.grpc.v1.content            — its gRPC front end: Info, Update,
//     List, Delete, Read, Status, ListStatuses, Write, Abort. Streams (List,
//     Read, Write) are callback reactors: no thread is held per stream.
#pragma once

#include <memory>
#include <string>

#include "content/content.h"
#include "events/exchange.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::content {

class ContentService {
 public:
  ContentService(std::shared_ptr<metadata::DB> db, std::shared_ptr<ctrd::events::Exchange> events)
      : db_(std::move(db)), events_(std::move(events)) {}

  // The content `ns` sees; writes are held by `lease` when it is not empty.
  std::shared_ptr<ctrd::content::Store> store(const std::string& ns, const std::string& lease = "") const {
    return db_->content_store(ns, lease);
  }
  errdefs::Status remove(const std::string& ns, const std::string& digest);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<ctrd::events::Exchange> events_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::content
