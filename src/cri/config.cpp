#include "cri/config.h"

namespace ctrd::cri {

void RuncOptions::bind(config::Binder& b) {
  b.field("BinaryName", binary_name);
  b.field("CriuImagePath", criu_image_path);
  b.field("CriuPath", criu_path);
  b.field("CriuWorkPath", criu_work_path);
  b.field("IoGid", io_gid);
  b.field("IoUid", io_uid);
  b.field("NoNewKeyring", no_new_keyring);
  b.field("NoPivotRoot", no_pivot_root);
  b.field("Root", root);
  b.field("ShimCgroup", shim_cgroup);
  b.field("SystemdCgroup", systemd_cgroup);
}

void Runtime::bind(config::Binder& b) {
  b.field("base_runtime_spec", base_runtime_spec);
  b.field("cni_conf_dir", cni_conf_dir);
  b.field("cni_max_conf_num", cni_max_conf_num);
  b.field("container_annotations", container_annotations);
  b.field("pod_annotations", pod_annotations);
  b.field("privileged_without_host_devices", privileged_without_host_devices);
  b.field("runtime_engine", runtime_engine);
  b.field("runtime_path", runtime_path);
  b.field("runtime_root", runtime_root);
  b.field("runtime_type", runtime_type);
  b.section("options", options);
}

void ContainerdConfig::bind(config::Binder& b) {
  b.field("default_runtime_name", default_runtime_name);
  b.field("disable_snapshot_annotations", disable_snapshot_annotations);
  b.field("discard_unpacked_layers", discard_unpacked_layers);
  b.field("ignore_rdt_not_enabled_errors", ignore_rdt_not_enabled_errors);
  b.field("no_pivot", no_pivot);
  b.field("snapshotter", snapshotter);
  b.section_map("runtimes", runtimes);
}

void CniConfig::bind(config::Binder& b) {
  b.field("bin_dir", bin_dir);
  b.field("conf_dir", conf_dir);
  b.field("conf_template", conf_template);
  b.field("ip_pref", ip_pref);
  b.field("max_conf_num", max_conf_num);
}

void RegistryAuth::bind(config::Binder& b) {
  b.field("username", username);
  b.field("password", password);
  b.field("auth", auth);
  b.field("identitytoken", identitytoken);
}

void RegistryTls::bind(config::Binder& b) {
  b.field("insecure_skip_verify", insecure_skip_verify);
  b.field("ca_file", ca_file);
  b.field("cert_file", cert_file);
  b.field("key_file", key_file);
}

void RegistryHostConfig::bind(config::Binder& b) {
  b.section("auth", auth);
  b.section("tls", tls);
}

void RegistryMirror::bind(config::Binder& b) { b.field("endpoint", endpoint); }

void RegistryConfig::bind(config::Binder& b) {
  b.field("config_path", config_path);
  b.section_map("mirrors", mirrors);
  b.section_map("configs", configs);
}

void StreamingKeyPair::bind(config::Binder& b) {
  b.field("tls_cert_file", tls_cert_file);
  b.field("tls_key_file", tls_key_file);
}

void Config::bind(config::Binder& b) {
  b.field("device_ownership_from_security_context", device_ownership_from_security_context);
  b.field("disable_apparmor", disable_apparmor);
  b.field("disable_cgroup", disable_cgroup);
  b.field("disable_hugetlb_controller", disable_hugetlb_controller);
  b.field("disable_proc_mount", disable_proc_mount);
  b.field("disable_tcp_service", disable_tcp_service);
  b.field("enable_selinux", enable_selinux);
  b.field("enable_tls_streaming", enable_tls_streaming);
  b.field("enable_unprivileged_icmp", enable_unprivileged_icmp);
  b.field("enable_unprivileged_ports", enable_unprivileged_ports);
  b.field("ignore_image_defined_volumes", ignore_image_defined_volumes);
  b.field("max_concurrent_downloads", max_concurrent_downloads);
  b.field("max_container_log_line_size", max_container_log_line_size);
  b.field("netns_mounts_under_state_dir", netns_mounts_under_state_dir);
  b.field("restrict_oom_score_adj", restrict_oom_score_adj);
  b.field("sandbox_image", sandbox_image);
  b.field("selinux_category_range", selinux_category_range);
  b.field("stats_collect_period", stats_collect_period);
  b.field("stream_idle_timeout", stream_idle_timeout);
  b.field("stream_server_address", stream_server_address);
  b.field("stream_server_port", stream_server_port);
  b.field("systemd_cgroup", systemd_cgroup);
  b.field("tolerate_missing_hugetlb_controller", tolerate_missing_hugetlb_controller);
  b.field("unset_seccomp_profile", unset_seccomp_profile);
  b.section("cni", cni);
  b.section("containerd", containerd);
  b.section("registry", registry);
  b.section("x509_key_pair_streaming", x509_key_pair_streaming);
}

const Runtime* Config::default_runtime() const {
  auto it = containerd.runtimes.find(containerd.default_runtime_name);
  return it == containerd.runtimes.end() ? nullptr : &it->second;
}

}  // namespace ctrd::cri
