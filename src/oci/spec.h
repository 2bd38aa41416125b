// oci: builds OCI runtime specs (a bundle's config.json) the way containerd 1.6
// does. default_unix_spec() gives containerd's default Linux spec; the set_*
// modifiers below are the small edits the CRI plugin composes on top of it for
// pod sandboxes and containers (args, env, user, namespaces, mounts,
// capabilities, privileged mode, resources, sysctls, seccomp). Specs are plain
// JSON so they can be written for runc as they are.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "errdefs/errdefs.h"

namespace ctrd::oci {

// The runtime-spec version containerd 1.6 writes (its vendored specs-go).
inline constexpr std::string_view kOciVersion = "1.0.2-dev";
// The containerd namespace the CRI plugin runs everything in.
inline constexpr std::string_view kCriNamespace = "k8s.io";
// containerd's default PATH for Linux processes.
inline constexpr std::string_view kDefaultPathEnv =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// containerd's default spec for a Linux container with this id. The cgroups
// path is /<namespace_name>/<id>, as containerd derives it from its namespace.
nlohmann::json default_unix_spec(const std::string& id, std::string_view namespace_name = kCriNamespace);

// containerd's default capability set (bounding, effective and permitted).
const std::vector<std::string>& default_capabilities();
// Every capability name Linux defines, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
const std::vector<std::string>& known_capabilities();
// The known capabilities in this process's bounding set: what "ALL" means,
// as containerd's cap.Current() (a capability the kernel lacks is left out).
std::vector<std::string> current_capabilities();

// Replaces process.args (and drops any Windows commandLine).
void set_process_args(nlohmann::json& spec, const std::vector<std::string>& args);
// Merges KEY=VALUE entries into process.env: a later value of a key replaces
// the earlier one in place, new keys are appended, a bare KEY unsets it.
void set_env(nlohmann::json& spec, const std::vector<std::string>& env);
// Sets process.cwd.
void set_cwd(nlohmann::json& spec, const std::string& cwd);
// Sets process.user; additionalGids is omitted when empty.
void set_user(nlohmann::json& spec, uint32_t uid, uint32_t gid, const std::vector<uint32_t>& additional_gids);
// Sets the hostname (meaningful with a private uts namespace).
void set_hostname(nlohmann::json& spec, const std::string& hostname);

// Joins the namespace of this type at path ("network", "/var/run/netns/x"),
// adding the namespace if the spec lacks it; an empty path makes a new one.
void set_namespace_path(nlohmann::json& spec, std::string_view type, const std::string& path);
// Drops the namespace of this type so the process shares the host's (host
// network, pid or ipc).
void remove_namespace(nlohmann::json& spec, std::string_view type);

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

// Appends a mount, first removing any mount at the same destination (and,
// for a /dev mount, the default mounts under /dev) as the CRI does for
// user-supplied mounts. Fails if the destination is not absolute.
errdefs::Status add_mount(nlohmann::json& spec, const Mount& mount);
// Removes the mounts at this destination (e.g. /run, which the CRI drops).
void remove_mount(nlohmann::json& spec, std::string_view destination);

// Sets root.readonly.
void set_readonly_rootfs(nlohmann::json& spec, bool readonly);
// Sets process.noNewPrivileges.
void set_no_new_privileges(nlohmann::json& spec, bool no_new_privileges);

// Applies a CRI security context's capability add/drop lists. Names may omit
// the CAP_ prefix and any case ("net_admin"). As the CRI does: "ALL" in add
// first grants all_capabilities, "ALL" in drop then clears every set, and the
// individual adds and drops are applied after that, so drop ALL + add X
// leaves X alone and add ALL + drop X leaves everything but X.
void set_capabilities(nlohmann::json& spec, const std::vector<std::string>& add,
                      const std::vector<std::string>& drop,
                      const std::vector<std::string>& all_capabilities = current_capabilities());
// Privileged mode: all current capabilities, no masked or readonly paths,
// writable sysfs and cgroupfs, no seccomp/apparmor/selinux, all devices allowed.
void set_privileged(nlohmann::json& spec);
// Unmasks everything (linux.maskedPaths removed).
void clear_masked_paths(nlohmann::json& spec);
// Makes nothing read-only beyond the mounts (linux.readonlyPaths removed).
void clear_readonly_paths(nlohmann::json& spec);

// Sets linux.cgroupsPath (a path, or slice:prefix:name for the systemd driver).
void set_cgroups_path(nlohmann::json& spec, const std::string& path);
// Sets process.oomScoreAdj.
void set_oom_score_adj(nlohmann::json& spec, int oom_score_adj);
// Merges into linux.sysctl (later values win). See validate_sysctl.
void set_sysctls(nlohmann::json& spec, const std::map<std::string, std::string>& sysctls);
// Merges into the spec's annotations (later values win).
void set_annotations(nlohmann::json& spec, const std::map<std::string, std::string>& annotations);
// Sets linux.seccomp to this profile (an OCI LinuxSeccomp object).
void set_seccomp(nlohmann::json& spec, const nlohmann::json& profile);
// Removes linux.seccomp: no syscall filtering.
void set_seccomp_unconfined(nlohmann::json& spec);
// Would set process.selinuxLabel; ctrd runs without SELinux, where the CRI's
// label is always empty, so this deliberately writes nothing.
void set_selinux_label(nlohmann::json& spec, const std::string& label);

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB"
  uint64_t limit = 0;     // bytes
};

// A CRI LinuxContainerResources: zero or empty means "not set".
struct Resources {
  int64_t cpu_period = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_shares = 0;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  int64_t memory_limit_in_bytes = 0;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;  // cgroup v2 files, merged
};

// Writes the set resources into linux.resources. With a memory limit and a
// swap controller the swap limit equals it, so the container cannot swap
// (containerd's default); without one, setting swap would make runc fail.
void set_resources(nlohmann::json& spec, const Resources& resources, bool swap_controller_available);

// A mount destination must be an absolute path.
errdefs::Status validate_mount_destination(std::string_view destination);
// Whether this sysctl is namespaced, so a container may set it: the IPC ones
// (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) and net.*.
bool is_namespaced_sysctl(std::string_view name);
// A sysctl a pod may set: namespaced, and its namespace not the host's
// (net.* needs a pod network namespace, the IPC ones a pod IPC namespace).
errdefs::Status validate_sysctl(std::string_view name, bool host_network, bool host_ipc);

}  // namespace ctrd::oci
