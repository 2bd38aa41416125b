// cri/backend: the daemon's services that CRI pods and containers are made
// of (container records, snapshots, tasks, images, the pod network's CNI
// configuration), where the CRI plugin keeps its files, and the small pieces
// both the sandbox and the container side need: ids, the runtime a handler
// names, the Any encodings of specs and runc options, a temporary lease.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cri/cni_config.h"
#include "cri/config.h"
#include "errdefs/errdefs.h"
#include "metadata/containers.h"

namespace ctrd::metadata {
class DB;
}
namespace ctrd::executor {
class WorkerPool;
}
namespace ctrd::services::containers {
class ContainersService;
}
namespace ctrd::services::snapshots {
class SnapshotsService;
}
namespace ctrd::services::tasks {
class TasksService;
}

namespace ctrd::cri {

class ImageStore;
class ImagePuller;

struct Backend {
  const Config* config = nullptr;
  std::string root;   // the plugin's own directory under the daemon's root
  std::string state;  // and under its state directory
  std::shared_ptr<metadata::DB> db;
  std::shared_ptr<services::containers::ContainersService> containers;
  std::shared_ptr<services::snapshots::SnapshotsService> snapshots;
  std::shared_ptr<services::tasks::TasksService> tasks;
  ImageStore* images = nullptr;
  ImagePuller* puller = nullptr;  // null: images are never pulled
  // The pod network's configuration as it is now (conf_dir read again).
  std::function<errdefs::StatusOr<std::vector<NetworkConfig>>()> networks;
  std::string snapshotter_root;  // the configured snapshotter's directory: the writable layers' filesystem
  std::string pause_binary;      // ctrd's own pause process, for sandbox_image = ""
  // For work a runtime callback must not do on the runtime's thread.
  std::shared_ptr<executor::WorkerPool> blocking;
};

// `bytes` random bytes in lower-case hex: 32 make a container id as containerd's.
std::string random_hex(size_t bytes);

// The runtime `handler` names ("" is default_runtime_name); NotFound naming
// it when the config has no [containerd.runtimes.<handler>].
errdefs::StatusOr<const Runtime*> runtime_for(const Config& config, const std::string& handler);
// The runtime's runc options as the shim takes them (containerd.runc.v1.Options).
metadata::AnyValue runc_options(const Runtime& runtime);
// An OCI spec as a container record holds it.
metadata::AnyValue spec_value(const nlohmann::json& spec);
// The spec a record holds; DataLoss when it is not JSON.
errdefs::StatusOr<nlohmann::json> spec_of(const metadata::Container& container);
// This process's oom_score_adj, the floor restrict_oom_score_adj keeps.
int daemon_oom_score_adj();

// A lease of the k8s.io namespace for as long as the object lives, so that
// what is made under it (a pull's content, a container's snapshot) survives
// a garbage collection until the record that holds it exists.
class TemporaryLease {
 public:
  static errdefs::StatusOr<TemporaryLease> create(std::shared_ptr<metadata::DB> db,
                                                  const std::string& prefix);
  TemporaryLease(TemporaryLease&& other) noexcept : db_(std::move(other.db_)), id_(std::move(other.id_)) {}
  TemporaryLease& operator=(TemporaryLease&&) = delete;
  TemporaryLease(const TemporaryLease&) = delete;
  TemporaryLease& operator=(const TemporaryLease&) = delete;
  ~TemporaryLease();
  const std::string& id() const { return id_; }

 private:
  TemporaryLease(std::shared_ptr<metadata::DB> db, std::string id) : db_(std::move(db)), id_(std::move(id)) {}
  std::shared_ptr<metadata::DB> db_;
  std::string id_;
};

// Steps to undo when a multi-step call fails half way: run in reverse order
// unless dismissed.
class Undo {
 public:
  Undo() = default;
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;
  ~Undo() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  void dismiss() { steps_.clear(); }

 private:
  std::vector<std::function<void()>> steps_;
};

}  // namespace ctrd::cri
