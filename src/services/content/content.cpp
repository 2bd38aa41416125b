#include "services/content/content.h"

#include <github.com/containerd/containerd/api/events/content.pb.h>

#include "events/publish.h"

namespace ctrd::services::content {

errdefs::Status ContentService::remove(const std::string& ns, const std::string& digest) {
  CTRD_RETURN_IF_ERROR(store(ns)->remove(digest));
  containerd::events::ContentDelete ev;
  ev.set_digest(digest);
  (void)ctrd::events::publish(*events_, ns, "/content/delete", ev);
  return errdefs::Status::Ok();
}

}  // namespace ctrd::services::content
