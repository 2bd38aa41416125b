#include "services/containers/containers.h"

#include <github.com/containerd/containerd/api/events/container.pb.h>

#include "events/publish.h"

namespace ctrd::services::containers {

errdefs::StatusOr<metadata::Container> ContainersService::get(const std::string& ns, const std::string& id) {
  return db_->containers(ns).get(id);
}

errdefs::StatusOr<std::vector<metadata::Container>> ContainersService::list(
    const std::string& ns, const std::vector<std::string>& filters) {
  return db_->containers(ns).list(filters);
}

errdefs::StatusOr<metadata::Container> ContainersService::create(const std::string& ns,
                                                                 const metadata::Container& c) {
  CTRD_ASSIGN_OR_RETURN(auto created, db_->containers(ns).create(c));
  containerd::events::ContainerCreate ev;
  ev.set_id(created.id);
  ev.set_image(created.image);
  ev.mutable_runtime()->set_name(created.runtime.name);
  if (!created.runtime.options.type_url.empty()) {
    ev.mutable_runtime()->mutable_options()->set_type_url(created.runtime.options.type_url);
    ev.mutable_runtime()->mutable_options()->set_value(created.runtime.options.value);
  }
  (void)ctrd::events::publish(*events_, ns, "/containers/create", ev);
  return created;
}

errdefs::StatusOr<metadata::Container> ContainersService::update(const std::string& ns,
                                                                 const metadata::Container& c,
                                                                 const std::vector<std::string>& paths) {
  CTRD_ASSIGN_OR_RETURN(auto updated, db_->containers(ns).update(c, paths));
  containerd::events::ContainerUpdate ev;
  ev.set_id(updated.id);
  ev.set_image(updated.image);
  ev.mutable_labels()->insert(updated.labels.begin(), updated.labels.end());
  ev.set_snapshot_key(updated.snapshot_key);
  (void)ctrd::events::publish(*events_, ns, "/containers/update", ev);
  return updated;
}

errdefs::Status ContainersService::remove(const std::string& ns, const std::string& id) {
  CTRD_RETURN_IF_ERROR(db_->containers(ns).remove(id));
  containerd::events::ContainerDelete ev;
  ev.set_id(id);
  (void)ctrd::events::publish(*events_, ns, "/containers/delete", ev);
  return errdefs::Status::Ok();
}

}  // namespace ctrd::services::containers
