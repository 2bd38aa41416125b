// cri/sandbox_store: the pod sandboxes the CRI plugin knows, in memory, with
// what each one is persisted as — a JSON document in its container record's
// extension `io.cri-containerd.sandbox.metadata` (the config the kubelet sent,
// the network namespace and addresses, the CNI result), so that a restarted
// daemon finds its pods again. Also the names the kubelet derives from a
// pod's metadata, reserved so that two sandboxes never share one, and the
// look-up by id prefix that CRI clients such as crictl rely on.
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cri/exit_latch.h"
#include "errdefs/errdefs.h"

namespace ctrd::cri {

// The container extension that holds a sandbox's metadata, as containerd names it.
inline constexpr std::string_view kSandboxMetadataExtension = "io.cri-containerd.sandbox.metadata";

enum class SandboxState { kReady, kNotReady, kUnknown };

struct SandboxMetadata {
  std::string id;
  std::string name;  // sandbox_name(config.metadata())
  ::runtime::v1::PodSandboxConfig config;
  std::string netns_path;  // empty with the host's network
  std::string ip;
  std::vector<std::string> additional_ips;
  std::string runtime_handler;
  std::string cni_result;  // the CNI ADD result, for the DEL
};

struct Sandbox {
  SandboxMetadata metadata;
  SandboxState state = SandboxState::kUnknown;
  uint32_t pid = 0;
  std::chrono::system_clock::time_point created_at;
  // Set when the pause process has exited; shared by every copy.
  std::shared_ptr<ExitLatch> exited;
};

// "k8s_POD_<name>_<namespace>_<uid>_<attempt>", as containerd's CRI makes it.
std::string sandbox_name(const ::runtime::v1::PodSandboxMetadata& metadata);

errdefs::StatusOr<std::string> encode_metadata(const SandboxMetadata& metadata);
// DataLoss naming what does not parse.
errdefs::StatusOr<SandboxMetadata> decode_metadata(std::string_view json);

// Names held by ids. Thread-safe.
class NameIndex {
 public:
  // AlreadyExists naming the id that holds `name` (the same id may reserve again).
  errdefs::Status reserve(const std::string& name, const std::string& id);
  void release(const std::string& name);
  std::optional<std::string> holder(const std::string& name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> names_;
};

// Thread-safe; what it returns are copies.
class SandboxStore {
 public:
  // AlreadyExists for an id already held.
  errdefs::Status add(Sandbox sandbox);
  // By id, or by a prefix that names exactly one sandbox; NotFound otherwise
  // (a prefix naming several is NotFound too, saying so).
  errdefs::StatusOr<Sandbox> get(const std::string& id_or_prefix) const;
  std::vector<Sandbox> list() const;
  // NotFound when the sandbox is gone.
  errdefs::Status update(const std::string& id, SandboxState state, uint32_t pid);
  void remove(const std::string& id);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Sandbox> sandboxes_;
};

}  // namespace ctrd::cri
