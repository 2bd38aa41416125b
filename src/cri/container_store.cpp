#include "cri/container_store.h"

#include <google/protobuf/util/json_util.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cri/id_prefix.h"

namespace ctrd::cri {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

int64_t nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_nanos(int64_t n) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(n)));
}

}  // namespace

errdefs::StatusOr<std::string> encode_metadata(const ContainerMetadata& m) {
  std::string config;
  if (auto converted = google::protobuf::util::MessageToJsonString(m.config, &config); !converted.ok())
    return errdefs::Internal("cannot encode the container config: " + std::string(converted.message()));
  json doc{{"Version", "v1"},
           {"Metadata",
            {{"ID", m.id},
             {"Name", m.name},
             {"SandboxID", m.sandbox_id},
             {"Config", json::parse(config)},
             {"ImageRef", m.image_ref},
             {"ImageName", m.image_name},
             {"LogPath", m.log_path},
             {"StopSignal", m.stop_signal}}}};
  return doc.dump();
}

errdefs::StatusOr<ContainerMetadata> decode_container_metadata(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("Metadata") || !doc["Metadata"].is_object())
    return errdefs::DataLoss("container metadata is not a JSON document with its Metadata");
  if (doc.value("Version", "") != "v1")
    return errdefs::DataLoss("container metadata has version " + errdefs::quoted(doc.value("Version", "")));
  const json& m = doc["Metadata"];
  try {
    ContainerMetadata out;
    out.id = m.value("ID", "");
    out.name = m.value("Name", "");
    out.sandbox_id = m.value("SandboxID", "");
    out.image_ref = m.value("ImageRef", "");
    out.image_name = m.value("ImageName", "");
    out.log_path = m.value("LogPath", "");
    out.stop_signal = m.value("StopSignal", "");
    if (m.contains("Config")) {
      if (auto parsed = google::protobuf::util::JsonStringToMessage(m["Config"].dump(), &out.config);
          !parsed.ok())
        return errdefs::DataLoss("container " + out.id +
                                 ": config does not parse: " + std::string(parsed.message()));
    }
    if (out.id.empty() || out.sandbox_id.empty())
      return errdefs::DataLoss("container metadata without its ids");
    return out;
  } catch (const json::exception& e) {
    return errdefs::DataLoss(std::string("container metadata: ") + e.what());
  }
}

errdefs::Status write_status(const std::string& dir, const ContainerStatus& status) {
  json doc{{"State", static_cast<int>(status.state)},
           {"CreatedAt", nanos(status.created_at)},
           {"StartedAt", nanos(status.started_at)},
           {"FinishedAt", nanos(status.finished_at)},
           {"ExitCode", status.exit_code},
           {"Reason", status.reason},
           {"Message", status.message},
           {"Pid", status.pid}};
  const std::string path = dir + "/status";
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << doc.dump();
    if (!out) return errdefs::Internal("cannot write " + temp);
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return errdefs::Internal("cannot write " + path + ": " + ec.message());
  return errdefs::Status::Ok();
}

errdefs::StatusOr<ContainerStatus> read_status(const std::string& dir) {
  std::ifstream in(dir + "/status");
  if (!in) return errdefs::NotFound("no status in " + dir);
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return errdefs::DataLoss(dir + "/status is not JSON");
  ContainerStatus s;
  s.state = static_cast<::runtime::v1::ContainerState>(doc.value("State", 3));
  s.created_at = from_nanos(doc.value("CreatedAt", int64_t{0}));
  s.started_at = from_nanos(doc.value("StartedAt", int64_t{0}));
  s.finished_at = from_nanos(doc.value("FinishedAt", int64_t{0}));
  s.exit_code = doc.value("ExitCode", 0);
  s.reason = doc.value("Reason", "");
  s.message = doc.value("Message", "");
  s.pid = doc.value("Pid", 0u);
  return s;
}

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
