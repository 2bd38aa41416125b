#include "cri/sandbox_store.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>

#include "cri/id_prefix.h"

namespace ctrd::cri {
namespace {

using nlohmann::json;

// The version of the persisted document; a reader refuses others.
constexpr std::string_view kMetadataVersion = "v1";

}  // namespace

std::string sandbox_name(const ::runtime::v1::PodSandboxMetadata& metadata) {
  return "k8s_POD_" + metadata.name() + "_" + metadata.namespace_() + "_" + metadata.uid() + "_" +
         std::to_string(metadata.attempt());
}

errdefs::StatusOr<std::string> encode_metadata(const SandboxMetadata& metadata) {
  std::string config;
  if (auto converted = google::protobuf::util::MessageToJsonString(metadata.config, &config); !converted.ok())
    return errdefs::Internal("cannot encode the sandbox config: " + std::string(converted.message()));
  json doc{{"Version", kMetadataVersion},
           {"Metadata",
            {{"ID", metadata.id},
             {"Name", metadata.name},
             {"Config", json::parse(config)},
             {"NetNSPath", metadata.netns_path},
             {"IP", metadata.ip},
             {"AdditionalIPs", metadata.additional_ips},
             {"RuntimeHandler", metadata.runtime_handler},
             {"CNIResult", metadata.cni_result}}}};
  return doc.dump();
}

errdefs::StatusOr<SandboxMetadata> decode_metadata(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return errdefs::DataLoss("sandbox metadata is not JSON");
  if (doc.value("Version", "") != kMetadataVersion)
    return errdefs::DataLoss("sandbox metadata has version " + errdefs::quoted(doc.value("Version", "")) +
                             ", not " + std::string(kMetadataVersion));
  if (!doc.contains("Metadata") || !doc["Metadata"].is_object())
    return errdefs::DataLoss("sandbox metadata without its Metadata");
  const json& m = doc["Metadata"];
  try {
    SandboxMetadata out;
    out.id = m.value("ID", "");
    out.name = m.value("Name", "");
    out.netns_path = m.value("NetNSPath", "");
    out.ip = m.value("IP", "");
    out.additional_ips = m.value("AdditionalIPs", std::vector<std::string>{});
    out.runtime_handler = m.value("RuntimeHandler", "");
    out.cni_result = m.value("CNIResult", "");
    if (m.contains("Config")) {
      if (auto parsed = google::protobuf::util::JsonStringToMessage(m["Config"].dump(), &out.config);
          !parsed.ok())
        return errdefs::DataLoss("sandbox " + out.id +
                                 ": config does not parse: " + std::string(parsed.message()));
    }
    if (out.id.empty()) return errdefs::DataLoss("sandbox metadata without an ID");
    return out;
  } catch (const json::exception& e) {
    return errdefs::DataLoss(std::string("sandbox metadata: ") + e.what());
  }
}

errdefs::Status NameIndex::reserve(const std::string& name, const std::string& id) {
  std::lock_guard lock(mu_);
  auto [it, added] = names_.emplace(name, id);
  if (!added && it->second != id)
    return errdefs::AlreadyExists("name " + errdefs::quoted(name) + " is reserved for " +
                                  errdefs::quoted(it->second));
  return errdefs::Status::Ok();
}

void NameIndex::release(const std::string& name) {
  std::lock_guard lock(mu_);
  names_.erase(name);
}

std::optional<std::string> NameIndex::holder(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

errdefs::Status SandboxStore::add(Sandbox sandbox) {
  std::lock_guard lock(mu_);
  const std::string id = sandbox.metadata.id;
  if (!sandboxes_.emplace(id, std::move(sandbox)).second)
    return errdefs::AlreadyExists("sandbox " + errdefs::quoted(id) + " already exists");
  return errdefs::Status::Ok();
}

errdefs::StatusOr<Sandbox> SandboxStore::get(const std::string& id_or_prefix) const {
  std::lock_guard lock(mu_);
  CTRD_ASSIGN_OR_RETURN(auto it, find_by_id_or_prefix(sandboxes_, id_or_prefix, "sandbox"));
  return it->second;
}

std::vector<Sandbox> SandboxStore::list() const {
  std::lock_guard lock(mu_);
  std::vector<Sandbox> out;
  out.reserve(sandboxes_.size());
  for (const auto& [id, sandbox] : sandboxes_) out.push_back(sandbox);
  return out;
}

errdefs::Status SandboxStore::update(const std::string& id, SandboxState state, uint32_t pid) {
  std::lock_guard lock(mu_);
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end()) return errdefs::NotFound("sandbox " + errdefs::quoted(id) + " does not exist");
  it->second.state = state;
  it->second.pid = pid;
  return errdefs::Status::Ok();
}

void SandboxStore::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  sandboxes_.erase(id);
}

}  // namespace ctrd::cri
