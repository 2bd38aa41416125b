// cri/pod_spec: the OCI runtime specs (a bundle's config.json) of a pod
// sandbox and of a container in it, as containerd 1.6's CRI plugin builds
// them from the kubelet's PodSandboxConfig / ContainerConfig and the image's
// config: process args and env, the sandbox's files bound into every
// container, the pod's namespaces joined through the sandbox's process, the
// security context (user and groups, capabilities, privileged mode, seccomp,
// read-only rootfs), resources, the cgroups path and the CRI annotations.
//
// The functions only compute; what they need from the host is passed in
// (paths the caller prepared, a reader of the container's rootfs) or read
// without side effects (device numbers, symlinks), with one exception kept
// from containerd: a missing host path of a CRI mount is created as a
// directory, as the kubelet relies on for hostPath volumes of type "".
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "errdefs/errdefs.h"
#include "images/images.h"

namespace ctrd::cri {

// Files the daemon prepared on the host for a sandbox, bound into its containers.
struct SandboxFiles {
  std::string hostname;     // a file holding the hostname -> /etc/hostname (not bound when empty)
  std::string hosts;        // -> /etc/hosts (not bound when empty)
  std::string resolv_conf;  // -> /etc/resolv.conf (not bound when empty)
  std::string
      shm;  // a tmpfs the daemon mounted -> /dev/shm; empty with host IPC (host's /dev/shm is bound then)
};

// Reads a file of an image's rootfs by its absolute path inside it; NotFound when absent.
using RootfsFileReader = std::function<errdefs::StatusOr<std::string>(const std::string& path)>;

struct SandboxSpecInput {
  std::string id;
  const ::runtime::v1::PodSandboxConfig* config = nullptr;
  const images::ImageConfig* image = nullptr;  // the sandbox image's config; null when ctrd's own pause runs
  std::vector<std::string> pause_args;         // the process args when image is null (e.g. {"/pause"})
  std::string netns_path;                      // empty with host network
  SandboxFiles files;                          // resolv_conf and shm are bound into the sandbox too
  bool systemd_cgroup = false;                 // the runtime's SystemdCgroup option
  bool restrict_oom_score_adj = false;
  int daemon_oom_score_adj = 0;  // this process's, read by the caller
  // The runtime's pod_annotations ("io.kubernetes.cri.*"-style globs, matched
  // as Go's path.Match does); matching config annotations are copied into the spec.
  std::vector<std::string> pod_annotation_patterns;
  std::string runtime_handler;
  // Added beyond the first sketch:
  std::string unset_seccomp_profile;       // Config::unset_seccomp_profile
  bool enable_unprivileged_ports = false;  // Config::enable_unprivileged_ports
  bool enable_unprivileged_icmp = false;   // Config::enable_unprivileged_icmp
  // Resolves a user name of the image's USER (or the uid's primary group)
  // through the image's /etc/passwd and /etc/group; null reads as "no such file".
  RootfsFileReader read_rootfs_file;
};
errdefs::StatusOr<nlohmann::json> sandbox_spec(const SandboxSpecInput& in);

struct ContainerSpecInput {
  std::string id;
  std::string sandbox_id;
  uint32_t sandbox_pid = 0;  // to join the sandbox's namespaces by /proc/<pid>/ns/...
  const ::runtime::v1::ContainerConfig* config = nullptr;
  const ::runtime::v1::PodSandboxConfig* sandbox_config = nullptr;
  const images::ImageConfig* image = nullptr;  // never null
  std::string image_name;                      // the image reference, for annotations
  std::string netns_path;                      // unused: the network namespace is joined through sandbox_pid
  SandboxFiles files;
  // Host directories the caller made for the image's volumes (destination ->
  // host dir); they are bind mounted unless the CRI mounts cover them.
  std::map<std::string, std::string> image_volumes;
  // Reads a file of the container's rootfs (/etc/passwd, /etc/group) for
  // run_as_username and the image's groups; NotFound when absent. Null reads
  // as "no such file".
  RootfsFileReader read_rootfs_file;
  bool systemd_cgroup = false;
  bool restrict_oom_score_adj = false;
  int daemon_oom_score_adj = 0;
  bool disable_proc_mount = false;
  std::string unset_seccomp_profile;  // Config::unset_seccomp_profile
  std::vector<std::string> container_annotation_patterns;
  std::string runtime_handler;
  bool privileged_without_host_devices = false;
  bool swap_controller_available = false;  // for oci::set_resources
  // Added beyond the first sketch:
  // The runtime's pod_annotations: containerd copies the matching sandbox
  // annotations into every container's spec too.
  std::vector<std::string> pod_annotation_patterns;
  // With pid namespace mode TARGET: the pid of the target container's process.
  uint32_t target_pid = 0;
  // Config::disable_hugetlb_controller: hugepage limits are only written when false.
  bool disable_hugetlb_controller = true;
  // Whether /sys/fs/cgroup is cgroup v2; an unprivileged container then gets
  // its own cgroup namespace. nullopt: find out with statfs.
  std::optional<bool> cgroup_v2;
  // The hostname for the HOSTNAME env var when the sandbox config has none;
  // empty: this host's name (as containerd uses os.Hostname()).
  std::string node_hostname;
  // The optional fields ("shared:12 master:3") of the mount holding a path,
  // for the propagation checks of bidirectional and host-to-container
  // mounts. Null: looked up in /proc/self/mountinfo.
  std::function<errdefs::StatusOr<std::string>(const std::string& path)> mount_propagation;
};
errdefs::StatusOr<nlohmann::json> container_spec(const ContainerSpecInput& in);

// Writes a CRI LinuxContainerResources into linux.resources (what
// CreateContainer and UpdateContainerResources both do).
void set_container_resources(nlohmann::json& spec, const ::runtime::v1::LinuxContainerResources& resources,
                             bool disable_hugetlb_controller, bool swap_controller_available);

// The cgroups path for a sandbox or container. As containerd: a parent whose
// last element ends in ".slice" gives the systemd form "<that slice>:cri-containerd:<id>",
// any other parent "<parent>/<id>". With no parent: the systemd driver gets
// "system.slice:cri-containerd:<id>", cgroupfs containerd's default "/k8s.io/<id>".
std::string cgroups_path(const std::string& cgroup_parent, const std::string& id, bool systemd);

// Whether an annotation key matches a runtime's pod_annotations /
// container_annotations pattern (Go's path.Match: *, ?, [classes], \ escapes;
// * and ? never match '/'). A malformed pattern matches nothing.
bool annotation_pattern_matches(const std::string& pattern, const std::string& key);

}  // namespace ctrd::cri
