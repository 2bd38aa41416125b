#include "services/images/images.h"

#include <github.com/containerd/containerd/api/events/image.pb.h>

#include "events/publish.h"

namespace ctrd::services::images {

errdefs::StatusOr<metadata::Image> ImagesService::get(const std::string& ns, const std::string& name) {
  return db_->images(ns).get(name);
}

errdefs::StatusOr<std::vector<metadata::Image>> ImagesService::list(const std::string& ns,
                                                                    const std::vector<std::string>& filters) {
  return db_->images(ns).list(filters);
}

errdefs::StatusOr<metadata::Image> ImagesService::create(const std::string& ns,
                                                         const metadata::Image& image) {
  CTRD_ASSIGN_OR_RETURN(auto created, db_->images(ns).create(image));
  containerd::services::images::v1::ImageCreate ev;
  ev.set_name(created.name);
  ev.mutable_labels()->insert(created.labels.begin(), created.labels.end());
  (void)ctrd::events::publish(*events_, ns, "/images/create", ev);
  return created;
}

errdefs::StatusOr<metadata::Image> ImagesService::update(const std::string& ns, const metadata::Image& image,
                                                         const std::vector<std::string>& paths) {
  CTRD_ASSIGN_OR_RETURN(auto updated, db_->images(ns).update(image, paths));
  containerd::services::images::v1::ImageUpdate ev;
  ev.set_name(updated.name);
  ev.mutable_labels()->insert(updated.labels.begin(), updated.labels.end());
  (void)ctrd::events::publish(*events_, ns, "/images/update", ev);
  return updated;
}

errdefs::Status ImagesService::remove(const std::string& ns, const std::string& name, bool sync) {
  CTRD_RETURN_IF_ERROR(db_->images(ns).remove(name));
  containerd::services::images::v1::ImageDelete ev;
  ev.set_name(name);
  (void)ctrd::events::publish(*events_, ns, "/images/delete", ev);
  if (sync) {
    auto collected = gc_->collect_now();
    if (!collected.ok()) return collected.status().with_context("garbage collection after image delete");
  }
  return errdefs::Status::Ok();
}

}  // namespace ctrd::services::images
