#include "cri/status_proto.h"

namespace ctrd::cri {
namespace {

namespace v1 = ::runtime::v1;

v1::PodSandboxState state_of(const Sandbox& sandbox) {
  return sandbox.state == SandboxState::kReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

template <typename Map>
bool has_labels(const google::protobuf::Map<std::string, std::string>& selector, const Map& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

int64_t unix_nanos(std::chrono::system_clock::time_point time) {
  if (time == std::chrono::system_clock::time_point{}) return 0;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

void to_proto(const Sandbox& sandbox, v1::PodSandboxStatus* out) {
  const auto& config = sandbox.metadata.config;
  out->set_id(sandbox.metadata.id);
  *out->mutable_metadata() = config.metadata();
  out->set_state(state_of(sandbox));
  out->set_created_at(unix_nanos(sandbox.created_at));
  out->mutable_network()->set_ip(sandbox.metadata.ip);
  for (const auto& ip : sandbox.metadata.additional_ips)
    out->mutable_network()->add_additional_ips()->set_ip(ip);
  *out->mutable_linux()->mutable_namespaces()->mutable_options() =
      config.linux().security_context().namespace_options();
  *out->mutable_labels() = config.labels();
  *out->mutable_annotations() = config.annotations();
  out->set_runtime_handler(sandbox.metadata.runtime_handler);
}

void to_proto(const Sandbox& sandbox, v1::PodSandbox* out) {
  const auto& config = sandbox.metadata.config;
  out->set_id(sandbox.metadata.id);
  *out->mutable_metadata() = config.metadata();
  out->set_state(state_of(sandbox));
  out->set_created_at(unix_nanos(sandbox.created_at));
  *out->mutable_labels() = config.labels();
  *out->mutable_annotations() = config.annotations();
  out->set_runtime_handler(sandbox.metadata.runtime_handler);
}

void to_proto(const CriContainer& container, v1::ContainerStatus* out) {
  const auto& m = container.metadata;
  const auto& s = container.status;
  out->set_id(m.id);
  *out->mutable_metadata() = m.config.metadata();
  out->set_state(s.state);
  out->set_created_at(unix_nanos(s.created_at));
  out->set_started_at(unix_nanos(s.started_at));
  out->set_finished_at(unix_nanos(s.finished_at));
  out->set_exit_code(s.exit_code);
  *out->mutable_image() = m.config.image();
  out->set_image_ref(m.image_ref);
  out->set_reason(s.reason);
  out->set_message(s.message);
  *out->mutable_labels() = m.config.labels();
  *out->mutable_annotations() = m.config.annotations();
  *out->mutable_mounts() = m.config.mounts();
  out->set_log_path(m.log_path);
}

void to_proto(const CriContainer& container, v1::Container* out) {
  const auto& m = container.metadata;
  out->set_id(m.id);
  out->set_pod_sandbox_id(m.sandbox_id);
  *out->mutable_metadata() = m.config.metadata();
  *out->mutable_image() = m.config.image();
  out->set_image_ref(m.image_ref);
  out->set_state(container.status.state);
  out->set_created_at(unix_nanos(container.status.created_at));
  *out->mutable_labels() = m.config.labels();
  *out->mutable_annotations() = m.config.annotations();
}

bool matches(const v1::PodSandboxFilter& filter, const Sandbox& sandbox) {
  if (!filter.id().empty() && !sandbox.metadata.id.starts_with(filter.id())) return false;
  if (filter.has_state() && filter.state().state() != state_of(sandbox)) return false;
  return has_labels(filter.label_selector(), sandbox.metadata.config.labels());
}

bool matches(const v1::ContainerFilter& filter, const CriContainer& container) {
  const auto& m = container.metadata;
  if (!filter.id().empty() && !m.id.starts_with(filter.id())) return false;
  if (!filter.pod_sandbox_id().empty() && !m.sandbox_id.starts_with(filter.pod_sandbox_id())) return false;
  if (filter.has_state() && filter.state().state() != container.status.state) return false;
  return has_labels(filter.label_selector(), m.config.labels());
}

}  // namespace ctrd::cri
