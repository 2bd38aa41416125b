// cri/config: the CRI plugin's configuration, [plugins."io.containerd.grpc.v1.cri"],
// with containerd 1.6's key names and defaults, so that a containerd
// config.toml written for a kubelet node works unchanged. `ctrd config
// default` prints it. Keys containerd 1.6 has that ctrd does not act on yet
// are kept (decoded and printed) so that such a file loads without warnings.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/binder.h"

namespace ctrd::cri {

// The runc shim's options ([...runtimes.<name>.options]), as containerd's
// runc options type names them.
struct RuncOptions {
  std::string binary_name;
  std::string criu_image_path;
  std::string criu_path;
  std::string criu_work_path;
  uint32_t io_gid = 0;
  uint32_t io_uid = 0;
  bool no_new_keyring = false;
  bool no_pivot_root = false;
  std::string root;
  std::string shim_cgroup;
  bool systemd_cgroup = false;
  void bind(config::Binder& b);
};

struct Runtime {
  std::string runtime_type;
  std::string runtime_engine;
  std::string runtime_path;
  std::string runtime_root;
  std::string base_runtime_spec;
  std::string cni_conf_dir;
  int32_t cni_max_conf_num = 0;
  std::vector<std::string> container_annotations;
  std::vector<std::string> pod_annotations;
  bool privileged_without_host_devices = false;
  RuncOptions options;
  void bind(config::Binder& b);
};

struct ContainerdConfig {
  std::string default_runtime_name = "runc";
  bool disable_snapshot_annotations = true;
  bool discard_unpacked_layers = false;
  bool ignore_rdt_not_enabled_errors = false;
  bool no_pivot = false;
  std::string snapshotter = "overlayfs";
  std::map<std::string, Runtime> runtimes{{"runc", Runtime{.runtime_type = "io.containerd.runc.v2"}}};
  void bind(config::Binder& b);
};

struct CniConfig {
  std::string bin_dir = "/opt/cni/bin";
  std::string conf_dir = "/etc/cni/net.d";
  std::string conf_template;
  std::string ip_pref;
  int32_t max_conf_num = 1;
  void bind(config::Binder& b);
};

struct RegistryAuth {
  std::string username;
  std::string password;
  std::string auth;
  std::string identitytoken;
  void bind(config::Binder& b);
};

struct RegistryTls {
  bool insecure_skip_verify = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  void bind(config::Binder& b);
};

// [registry.configs.<host>]: the older per-host settings.
struct RegistryHostConfig {
  RegistryAuth auth;
  RegistryTls tls;
  void bind(config::Binder& b);
};

// [registry.mirrors.<host>]
struct RegistryMirror {
  std::vector<std::string> endpoint;
  void bind(config::Binder& b);
};

struct RegistryConfig {
  // Directories of hosts.toml files, one per registry host (preferred).
  std::string config_path;
  std::map<std::string, RegistryMirror> mirrors;
  std::map<std::string, RegistryHostConfig> configs;
  void bind(config::Binder& b);
};

struct StreamingKeyPair {
  std::string tls_cert_file;
  std::string tls_key_file;
  void bind(config::Binder& b);
};

struct Config {
  bool device_ownership_from_security_context = false;
  bool disable_apparmor = false;
  bool disable_cgroup = false;
  bool disable_hugetlb_controller = true;
  bool disable_proc_mount = false;
  bool disable_tcp_service = true;
  bool enable_selinux = false;
  bool enable_tls_streaming = false;
  bool enable_unprivileged_icmp = false;
  bool enable_unprivileged_ports = false;
  bool ignore_image_defined_volumes = false;
  int32_t max_concurrent_downloads = 3;
  int32_t max_container_log_line_size = 16384;
  bool netns_mounts_under_state_dir = false;
  bool restrict_oom_score_adj = false;
  std::string sandbox_image = "registry.k8s.io/pause:3.6";
  int32_t selinux_category_range = 1024;
  int32_t stats_collect_period = 10;
  config::Duration stream_idle_timeout{std::chrono::hours(4)};
  std::string stream_server_address = "127.0.0.1";
  std::string stream_server_port = "0";
  bool systemd_cgroup = false;
  bool tolerate_missing_hugetlb_controller = true;
  std::string unset_seccomp_profile;
  CniConfig cni;
  ContainerdConfig containerd;
  RegistryConfig registry;
  StreamingKeyPair x509_key_pair_streaming;
  void bind(config::Binder& b);

  // The runtime named by containerd.default_runtime_name; null when the
  // name has no [containerd.runtimes.<name>] table.
  const Runtime* default_runtime() const;
};

}  // namespace ctrd::cri
