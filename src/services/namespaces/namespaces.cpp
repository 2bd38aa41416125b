#include "services/namespaces/namespaces.h"

#include <github.com/containerd/containerd/api/events/namespace.pb.h>

#include "events/publish.h"
#include "identifiers/identifiers.h"

namespace ctrd::services::namespaces {

errdefs::StatusOr<metadata::Namespace> NamespacesService::get(const std::string& name) {
  CTRD_RETURN_IF_ERROR(identifiers::validate(name).with_context("namespace"));
  auto labels = db_->namespaces().get(name);
  if (!labels.ok() && !errdefs::IsNotFound(labels.status())) return labels.status();
  return metadata::Namespace{name, labels.ok() ? *labels : metadata::Labels{}};
}

errdefs::StatusOr<std::vector<metadata::Namespace>> NamespacesService::list() {
  return db_->namespaces().list();
}

namespace {

std::string_view event_namespace(std::string_view caller_ns, const std::string& target) {
  return caller_ns.empty() ? std::string_view(target) : caller_ns;
}

}  // namespace

errdefs::StatusOr<metadata::Namespace> NamespacesService::create(const metadata::Namespace& ns,
                                                                 std::string_view caller_ns) {
  CTRD_RETURN_IF_ERROR(db_->namespaces().create(ns.name, ns.labels));
  containerd::events::NamespaceCreate ev;
  ev.set_name(ns.name);
  ev.mutable_labels()->insert(ns.labels.begin(), ns.labels.end());
  (void)ctrd::events::publish(*events_, event_namespace(caller_ns, ns.name), "/namespaces/create", ev);
  return ns;
}

errdefs::StatusOr<metadata::Namespace> NamespacesService::update(const metadata::Namespace& ns,
                                                                 const std::vector<std::string>& paths,
                                                                 std::string_view caller_ns) {
  for (const auto& p : paths) {
    if (p.rfind("labels.", 0) != 0) {
      return errdefs::InvalidArgument("cannot update \"" + p + "\" field on namespace " + ns.name);
    }
  }
  CTRD_ASSIGN_OR_RETURN(metadata::Labels labels, db_->namespaces().update(ns.name, ns.labels, paths));
  containerd::events::NamespaceUpdate ev;
  ev.set_name(ns.name);
  ev.mutable_labels()->insert(ns.labels.begin(), ns.labels.end());
  (void)ctrd::events::publish(*events_, event_namespace(caller_ns, ns.name), "/namespaces/update", ev);
  return metadata::Namespace{ns.name, std::move(labels)};
}

errdefs::Status NamespacesService::remove(const std::string& name) {
  CTRD_RETURN_IF_ERROR(identifiers::validate(name).with_context("namespace"));
  CTRD_RETURN_IF_ERROR(db_->namespaces().remove(name));
  containerd::events::NamespaceDelete ev;
  ev.set_name(name);
  // Unlike create and update, containerd publishes a delete in the deleted namespace.
  (void)ctrd::events::publish(*events_, name, "/namespaces/delete", ev);
  return errdefs::Status::Ok();
}

}  // namespace ctrd::services::namespaces
