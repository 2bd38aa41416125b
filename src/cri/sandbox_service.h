// cri/sandbox_service: the CRI's pod sandboxes — RunPodSandbox,
// StopPodSandbox, RemovePodSandbox and what PodSandboxStatus and
// ListPodSandbox read. A sandbox is made of a network namespace bound to a
// file with the pod network CNI set up in it, the files its containers share
// (hostname, hosts, resolv.conf, a /dev/shm tmpfs), and a container record
// with its task in namespace k8s.io: the sandbox image's pause process, or
// with sandbox_image = "" ctrd's own pause binary on an empty root (no image,
// no pull, no snapshot). The pod's containers are the container side's
// (cri/container_service); CriService stops and removes them first.
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include <memory>
#include <string>
#include <vector>

#include "cri/backend.h"
#include "cri/image_store.h"
#include "cri/pod_spec.h"
#include "cri/sandbox_store.h"
#include "errdefs/errdefs.h"

namespace ctrd::cri {

class SandboxService {
 public:
  explicit SandboxService(Backend backend);

  // The new sandbox's id, its pause process running in the pod network.
  // On failure nothing of it is left.
  errdefs::StatusOr<std::string> run(const ::runtime::v1::PodSandboxConfig& config,
                                     const std::string& runtime_handler);
  // Kills the pause process, deletes its task and tears the pod network
  // down. Idempotent; NotFound for an unknown sandbox.
  errdefs::Status stop(const std::string& id);
  // Stops the sandbox if it is not, then forgets it. Ok when it is gone.
  errdefs::Status remove(const std::string& id);

  // What a restarted daemon finds: the sandboxes among these container
  // records (kind "sandbox"), ready while their pause process runs.
  void recover(const std::vector<metadata::Container>& records);

  SandboxStore& store() { return *store_; }
  // The files a sandbox's containers bind (/etc/hostname, hosts, resolv.conf, /dev/shm).
  SandboxFiles files(const Sandbox& sandbox) const;

 private:
  errdefs::StatusOr<SandboxFiles> write_files(const std::string& id,
                                              const ::runtime::v1::PodSandboxConfig& config);
  void remove_files(const std::string& id);
  // The sandbox's metadata under its state directory, before it has a record.
  errdefs::Status write_pending(const SandboxMetadata& metadata);
  // Removes what sandboxes without a record left (a daemon killed during RunPodSandbox).
  void cleanup_orphans();
  errdefs::Status setup_network(SandboxMetadata& metadata);
  errdefs::Status teardown_network(const SandboxMetadata& metadata);
  errdefs::StatusOr<CriImage> sandbox_image();
  // Marks the sandbox not ready once its pause process exits.
  void watch(const std::shared_ptr<runtime::Task>& task, const std::string& id,
             const std::shared_ptr<ExitLatch>& exited);

  const Backend backend_;
  std::shared_ptr<SandboxStore> store_;
  NameIndex names_;
};

}  // namespace ctrd::cri
