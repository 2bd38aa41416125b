#include "cri/container_store.h"

#include "cri/id_prefix.h"

namespace ctrd::cri {

std::string container_name(const ::runtime::v1::ContainerMetadata& container,
                           const ::runtime::v1::PodSandboxMetadata& pod) {
  return "k8s_" + container.name() + "_" + pod.name() + "_" + pod.namespace_() + "_" + pod.uid() + "_" +
         std::to_string(container.attempt());
}

errdefs::Status ContainerStore::add(CriContainer container) {
  std::lock_guard lock(mu_);
  const std::string id = container.metadata.id;
  if (!containers_.emplace(id, std::move(container)).second)
    return errdefs::AlreadyExists("container " + errdefs::quoted(id) + " already exists");
  return errdefs::Status::Ok();
}

errdefs::StatusOr<CriContainer> ContainerStore::get(const std::string& id_or_prefix) const {
  std::lock_guard lock(mu_);
  CTRD_ASSIGN_OR_RETURN(auto it, find_by_id_or_prefix(containers_, id_or_prefix, "container"));
  return it->second;
}

std::vector<CriContainer> ContainerStore::list() const {
  std::lock_guard lock(mu_);
  std::vector<CriContainer> out;
  out.reserve(containers_.size());
  for (const auto& [id, container] : containers_) out.push_back(container);
  return out;
}

errdefs::Status ContainerStore::update(const std::string& id,
                                       const std::function<void(ContainerStatus&)>& change) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end())
    return errdefs::NotFound("container " + errdefs::quoted(id) + " does not exist");
  change(it->second.status);
  return errdefs::Status::Ok();
}

void ContainerStore::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  containers_.erase(id);
}

}  // namespace ctrd::cri
