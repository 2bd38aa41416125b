// cri/cri_service: the semantics of the CRI plugin (io.containerd.grpc.v1.cri)
// apart from its gRPC front end (cri/grpc.cpp): runtime information and
// readiness, the pod network's CNI configuration, and the node's runtime
// config. Pods, containers and images build on this.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cri/cni_config.h"
#include "cri/config.h"
#include "errdefs/errdefs.h"

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

class CriService {
 public:
  explicit CriService(Config config) : config_(std::move(config)) {}

  const Config& config() const { return config_; }

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
  errdefs::StatusOr<std::vector<NetworkConfig>> reload_network();

  const Config config_;
  std::mutex mu_;
  std::vector<NetworkConfig> networks_;
  std::string pod_cidr_;
};

}  // namespace ctrd::cri
