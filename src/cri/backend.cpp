#include "cri/backend.h"

#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>
#include <sys/random.h>

#include <fstream>

#include "cri/cri_service.h"
#include "log/log.h"
#include "metadata/db.h"

namespace ctrd::cri {

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t filled = 0;
  while (filled < bytes) {
    const ssize_t n = getrandom(raw.data() + filled, bytes - filled, 0);
    if (n > 0) filled += static_cast<size_t>(n);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

errdefs::StatusOr<const Runtime*> runtime_for(const Config& config, const std::string& handler) {
  const std::string& name = handler.empty() ? config.containerd.default_runtime_name : handler;
  auto it = config.containerd.runtimes.find(name);
  if (it == config.containerd.runtimes.end())
    return errdefs::NotFound("no runtime for " + errdefs::quoted(name) + " is configured");
  return &it->second;
}

metadata::AnyValue runc_options(const Runtime& runtime) {
  containerd::runc::v1::Options options;
  const RuncOptions& o = runtime.options;
  options.set_binary_name(o.binary_name);
  options.set_root(o.root);
  options.set_systemd_cgroup(o.systemd_cgroup);
  options.set_no_pivot_root(o.no_pivot_root);
  options.set_no_new_keyring(o.no_new_keyring);
  options.set_shim_cgroup(o.shim_cgroup);
  options.set_io_uid(o.io_uid);
  options.set_io_gid(o.io_gid);
  options.set_criu_path(o.criu_path);
  return metadata::AnyValue{.type_url = "containerd.runc.v1.Options", .value = options.SerializeAsString()};
}

metadata::AnyValue spec_value(const nlohmann::json& spec) {
  return metadata::AnyValue{.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Spec",
                            .value = spec.dump()};
}

errdefs::StatusOr<nlohmann::json> spec_of(const metadata::Container& container) {
  nlohmann::json spec = nlohmann::json::parse(container.spec.value, nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded() || !spec.is_object())
    return errdefs::DataLoss("the spec of container " + errdefs::quoted(container.id) + " is not JSON");
  return spec;
}

int daemon_oom_score_adj() {
  std::ifstream in("/proc/self/oom_score_adj");
  int value = 0;
  in >> value;
  return value;
}

errdefs::StatusOr<TemporaryLease> TemporaryLease::create(std::shared_ptr<metadata::DB> db,
                                                         const std::string& prefix) {
  std::string id = prefix + random_hex(8);
  CTRD_RETURN_IF_ERROR(db->leases(std::string(kNamespace)).create(id, {}).status());
  return TemporaryLease(std::move(db), std::move(id));
}

TemporaryLease::~TemporaryLease() {
  if (!db_) return;
  if (auto removed = db_->leases(std::string(kNamespace)).remove(id_); !removed.ok())
    log::warn("cannot remove a temporary lease", {{"lease", id_}, {"error", removed.message()}});
}

}  // namespace ctrd::cri
