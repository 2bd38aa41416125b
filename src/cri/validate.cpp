#include "cri/validate.h"

#include <string_view>

namespace ctrd::cri {
namespace {

namespace v1 = ::runtime::v1;

errdefs::Status invalid(std::string_view field, std::string_view why) {
  return errdefs::InvalidArgument(std::string(field) + " " + std::string(why));
}

// A name that becomes part of a sandbox or container name: no path
// separators, no control characters, not "." or "..".
errdefs::Status check_name(std::string_view field, const std::string& name) {
  if (name.empty()) return invalid(field, "is required");
  if (name == "." || name == "..") return invalid(field, errdefs::quoted(name) + " is not a name");
  for (unsigned char c : name) {
    if (c == '/' || c < 0x20 || c == 0x7f)
      return invalid(field, errdefs::quoted(name) + " holds a '/' or a control character");
  }
  return errdefs::Status::Ok();
}

bool has_dot_dot(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

errdefs::Status check_absolute(std::string_view field, const std::string& path) {
  if (path.empty() || path.front() != '/')
    return invalid(field, errdefs::quoted(path) + " is not an absolute path");
  if (has_dot_dot(path)) return invalid(field, errdefs::quoted(path) + " holds \"..\"");
  if (path.find('\0') != std::string::npos) return invalid(field, "holds a NUL byte");
  return errdefs::Status::Ok();
}

template <typename Map>
size_t bytes_of(const Map& map) {
  size_t n = 0;
  for (const auto& [k, v] : map) n += k.size() + v.size();
  return n;
}

errdefs::Status check_metadata_size(const google::protobuf::Map<std::string, std::string>& labels,
                                    const google::protobuf::Map<std::string, std::string>& annotations) {
  if (bytes_of(labels) + bytes_of(annotations) > kMaxMetadataBytes)
    return errdefs::InvalidArgument("labels and annotations take more than " +
                                    std::to_string(kMaxMetadataBytes) + " bytes");
  return errdefs::Status::Ok();
}

errdefs::Status check_namespaces(const v1::NamespaceOption& ns) {
  for (auto [field, mode] :
       {std::pair{"namespace_options.network", ns.network()}, std::pair{"namespace_options.pid", ns.pid()},
        std::pair{"namespace_options.ipc", ns.ipc()}}) {
    if (!v1::NamespaceMode_IsValid(mode))
      return invalid(field, "has an unknown mode " + std::to_string(mode));
  }
  return errdefs::Status::Ok();
}

}  // namespace

errdefs::Status validate_pod_config(const v1::PodSandboxConfig& config) {
  CTRD_RETURN_IF_ERROR(check_name("metadata.name", config.metadata().name()));
  CTRD_RETURN_IF_ERROR(check_name("metadata.namespace", config.metadata().namespace_()));
  CTRD_RETURN_IF_ERROR(check_name("metadata.uid", config.metadata().uid()));
  if (!config.log_directory().empty())
    CTRD_RETURN_IF_ERROR(check_absolute("log_directory", config.log_directory()));
  for (const auto& port : config.port_mappings()) {
    if (!v1::Protocol_IsValid(port.protocol()))
      return invalid("port_mappings.protocol", "has an unknown value " + std::to_string(port.protocol()));
    if (port.container_port() < 0 || port.container_port() > 65535 || port.host_port() < 0 ||
        port.host_port() > 65535)
      return invalid("port_mappings", "holds a port outside 0-65535");
  }
  CTRD_RETURN_IF_ERROR(check_namespaces(config.linux().security_context().namespace_options()));
  return check_metadata_size(config.labels(), config.annotations());
}

errdefs::Status validate_container_config(const v1::ContainerConfig& config) {
  CTRD_RETURN_IF_ERROR(check_name("metadata.name", config.metadata().name()));
  if (config.image().image().empty()) return invalid("image.image", "is required");
  if (const std::string& log = config.log_path(); !log.empty()) {
    if (log.front() == '/' || has_dot_dot(log))
      return invalid("log_path", errdefs::quoted(log) + " must stay inside the pod's log directory");
  }
  for (const auto& m : config.mounts()) {
    CTRD_RETURN_IF_ERROR(check_absolute("mounts.container_path", m.container_path()));
    CTRD_RETURN_IF_ERROR(check_absolute("mounts.host_path", m.host_path()));
    if (!v1::MountPropagation_IsValid(m.propagation()))
      return invalid("mounts.propagation", "has an unknown value " + std::to_string(m.propagation()));
  }
  for (const auto& d : config.devices()) {
    CTRD_RETURN_IF_ERROR(check_absolute("devices.container_path", d.container_path()));
    CTRD_RETURN_IF_ERROR(check_absolute("devices.host_path", d.host_path()));
  }
  CTRD_RETURN_IF_ERROR(check_namespaces(config.linux().security_context().namespace_options()));
  return check_metadata_size(config.labels(), config.annotations());
}

}  // namespace ctrd::cri
