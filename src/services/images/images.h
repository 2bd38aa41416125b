// services/images: images as containerd's API defines them.
//   io.containerd.service.v1.images-service — the metadata store's images,
//     publishing /images/create, /images/update and /images/delete; a `sync`
//     delete runs a garbage collection before it returns;
//   io.containerd.grpc.v1.images            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "events/exchange.h"
#include "gc/scheduler.h"
#include "metadata/db.h"
#include "plugin/plugin.h"

namespace ctrd::services::images {

class ImagesService {
 public:
  ImagesService(std::shared_ptr<metadata::DB> db, std::shared_ptr<ctrd::events::Exchange> events,
                std::shared_ptr<gc::Scheduler> gc)
      : db_(std::move(db)), events_(std::move(events)), gc_(std::move(gc)) {}

  errdefs::StatusOr<metadata::Image> get(const std::string& ns, const std::string& name);
  errdefs::StatusOr<std::vector<metadata::Image>> list(const std::string& ns,
                                                       const std::vector<std::string>& filters);
  errdefs::StatusOr<metadata::Image> create(const std::string& ns, const metadata::Image& image);
  errdefs::StatusOr<metadata::Image> update(const std::string& ns, const metadata::Image& image,
                                            const std::vector<std::string>& paths);
  errdefs::Status remove(const std::string& ns, const std::string& name, bool sync);

 private:
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<ctrd::events::Exchange> events_;
  std::shared_ptr<gc::Scheduler> gc_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::images
