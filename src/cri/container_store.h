// cri/container_store: the CRI containers the plugin knows, in memory — what
// the kubelet asked for (the ContainerConfig, its sandbox, the image) and the
// status the runtime reported (created, started, exited with code and
// reason) — with the look-up by id prefix crictl relies on.
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cri/exit_latch.h"
#include "errdefs/errdefs.h"

namespace ctrd::cri {

// The container extension that holds a container's metadata, as containerd names it.
inline constexpr std::string_view kContainerMetadataExtension = "io.cri-containerd.container.metadata";

struct ContainerMetadata {
  std::string id;
  std::string name;  // container_name(...)
  std::string sandbox_id;
  ::runtime::v1::ContainerConfig config;
  std::string image_ref;    // the image's id
  std::string image_name;   // the image as the config names it
  std::string log_path;     // empty when the pod keeps no logs
  std::string stop_signal;  // the image's, empty for SIGTERM
};

struct ContainerStatus {
  ::runtime::v1::ContainerState state = ::runtime::v1::CONTAINER_CREATED;
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point started_at;
  std::chrono::system_clock::time_point finished_at;
  int32_t exit_code = 0;
  std::string reason;
  std::string message;
  uint32_t pid = 0;
  bool removing = false;
};

struct CriContainer {
  ContainerMetadata metadata;
  ContainerStatus status;
  std::shared_ptr<ExitLatch> exited;  // set once the task's init process has exited
};

// "k8s_<container>_<pod>_<namespace>_<uid>_<attempt>", as containerd's CRI makes it.
std::string container_name(const ::runtime::v1::ContainerMetadata& container,
                           const ::runtime::v1::PodSandboxMetadata& pod);

// The metadata as a container record's extension holds it (JSON); DataLoss
// naming what does not parse.
errdefs::StatusOr<std::string> encode_metadata(const ContainerMetadata& metadata);
errdefs::StatusOr<ContainerMetadata> decode_container_metadata(std::string_view json);

// The status kept beside the record (<dir>/status), so that a restarted
// daemon knows a container it started, and how it ended.
errdefs::Status write_status(const std::string& dir, const ContainerStatus& status);
errdefs::StatusOr<ContainerStatus> read_status(const std::string& dir);

// Thread-safe; what it returns are copies.
class ContainerStore {
 public:
  errdefs::Status add(CriContainer container);
  // By id, or by a prefix that names exactly one container; NotFound otherwise.
  errdefs::StatusOr<CriContainer> get(const std::string& id_or_prefix) const;
  std::vector<CriContainer> list() const;
  // Applies `change` to the status under the store's lock; NotFound when gone.
  errdefs::Status update(const std::string& id, const std::function<void(ContainerStatus&)>& change);
  void remove(const std::string& id);

 private:
  mutable std::mutex mu_;
  std::map<std::string, CriContainer> containers_;
};

}  // namespace ctrd::cri
