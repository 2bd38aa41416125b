// cri/cri_service: the semantics of the CRI plugin (io.containerd.grpc.v1.cri)
// apart from its gRPC front end (cri/grpc.cpp): runtime information and
// readiness, the pod network's CNI configuration, and the node's runtime
// config. Pods, containers and images build on this.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cri/backend.h"
#include "cri/cni_config.h"
#include "cri/config.h"
#include "cri/container_events.h"
#include "cri/container_service.h"
#include "cri/image_pull.h"
#include "cri/image_store.h"
#include "cri/sandbox_service.h"
#include "errdefs/errdefs.h"
#include "streaming/server.h"

namespace ctrd::events {
class Exchange;
class Subscription;
}  // namespace ctrd::events

namespace ctrd::cri {

// The containerd namespace every CRI object lives in.
inline constexpr std::string_view kNamespace = "k8s.io";

struct RuntimeVersion {
  std::string version;  // of the CRI API's kubelet-facing protocol
  std::string runtime_name;
  std::string runtime_version;
  std::string runtime_api_version;  // "v1"
};

struct Condition {
  std::string type;
  bool status = false;
  std::string reason;
  std::string message;
};

struct RuntimeStatus {
  std::vector<Condition> conditions;        // RuntimeReady, then NetworkReady
  std::map<std::string, std::string> info;  // with verbose: JSON documents
};

// What the image filesystem holds: the configured snapshotter's directory.
struct FilesystemUsage {
  std::string mountpoint;
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
  std::chrono::system_clock::time_point measured_at;
};

class CriService {
 public:
  // `root` is the daemon's root directory; `images` may be null (no image
  // service: a daemon without the metadata plugin).
  CriService(Config config, std::string root, std::unique_ptr<ImageStore> images,
             std::unique_ptr<ImagePuller> puller)
      : config_(std::move(config)),
        root_(std::move(root)),
        images_(std::move(images)),
        puller_(std::move(puller)) {}
  explicit CriService(Config config) : CriService(std::move(config), "", nullptr, nullptr) {}

  const Config& config() const { return config_; }
  // Null without an image store.
  ImageStore* images() { return images_.get(); }
  // Null without a differ or an image store.
  ImagePuller* puller() { return puller_.get(); }
  // The snapshotter directory's usage, measured at most once per
  // stats_collect_period: walking a large tree on every kubelet poll would
  // cost more than it tells.
  FilesystemUsage image_fs_usage();

  // Pods and containers need the daemon's container, snapshot and task
  // services: `backend` names them (its images, puller and networks are
  // this service's). Without this call the pod calls answer Unavailable.
  // `events` (may be null) tells of OOM kills (/tasks/oom), so a container
  // the kernel killed exits with reason OOMKilled.
  void enable_workloads(Backend backend, std::shared_ptr<ctrd::events::Exchange> events = nullptr);
  ~CriService();
  // Null until enable_workloads.
  SandboxService* sandboxes() { return sandboxes_.get(); }
  ContainerService* containers() { return containers_.get(); }
  // GetContainerEvents' source.
  ContainerEvents& container_events() { return container_events_; }
  // StopPodSandbox: the pod's containers are killed first.
  errdefs::Status stop_pod_sandbox(const std::string& id);
  // RemovePodSandbox: the pod's containers are removed first.
  errdefs::Status remove_pod_sandbox(const std::string& id);

  // PodSandboxStats: the pod's CPU and memory (its containers' and its own
  // task's, summed), its network counters and its containers' stats.
  ::runtime::v1::PodSandboxStats pod_sandbox_stats(const Sandbox& sandbox);

  // The URLs the Exec, Attach and PortForward calls return: the streaming
  // server serves each once, within a minute. It starts with the first such
  // call (no port, no thread before), at stream_server_address:port.
  errdefs::StatusOr<std::string> exec_url(streaming::ExecRequest request);
  errdefs::StatusOr<std::string> attach_url(streaming::AttachRequest request);
  errdefs::StatusOr<std::string> port_forward_url(streaming::PortForwardRequest request);

  // The pod network's configuration, conf_dir read again.
  errdefs::StatusOr<std::vector<NetworkConfig>> load_networks();

  RuntimeVersion version() const;
  // The network is ready once [cni] conf_dir holds a configuration; the
  // directory is read again on each call, so a config a node agent writes
  // later is picked up (as containerd's watch on conf_dir does).
  RuntimeStatus status(bool verbose);
  // Renders [cni] conf_template with `pod_cidr` (comma-separated for dual
  // stack) into conf_dir, unless the network is ready already or no
  // template is configured.
  errdefs::Status update_runtime_config(const std::string& pod_cidr);

 private:
  void publish_container_event(const std::string& id, ::runtime::v1::ContainerEventType type);

  const Config config_;
  const std::string root_;
  const std::unique_ptr<ImageStore> images_;
  const std::unique_ptr<ImagePuller> puller_;
  std::unique_ptr<SandboxService> sandboxes_;
  std::shared_ptr<ContainerService> containers_;
  // The streaming server, started on first use. Stopped first in the
  // destructor: its sessions use the services above.
  errdefs::StatusOr<streaming::Server*> stream_server();
  std::mutex stream_server_mu_;
  std::unique_ptr<streaming::Server> stream_server_;  // guarded by stream_server_mu_
  CpuRates pod_cpu_rates_;
  std::shared_ptr<ctrd::events::Exchange> events_;
  std::shared_ptr<ctrd::events::Subscription> oom_events_;
  ContainerEvents container_events_;
  std::mutex mu_;
  std::optional<FilesystemUsage> image_fs_;
  std::vector<NetworkConfig> networks_;
  std::string pod_cidr_;
};

}  // namespace ctrd::cri
