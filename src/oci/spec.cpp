#include "oci/spec.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace ctrd::oci {
namespace {

using nlohmann::json;

json string_array(const std::vector<std::string>& items) { return json(items); }

json default_mounts() {
  auto mount = [](const char* destination, const char* type, const char* source,
                  std::vector<std::string> options) {
    return json{{"destination", destination}, {"type", type}, {"source", source}, {"options", options}};
  };
  return json::array({
      mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
  });
}

// Lexical cleaning as Go's filepath.Clean, so "/dev/shm/" and "/dev//shm"
// name the same destination when mounts are replaced.
std::string clean_path(std::string_view path) {
  const bool absolute = !path.empty() && path.front() == '/';
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in{std::string(path)};
  while (std::getline(in, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!absolute) {
        parts.push_back(part);
      }
      continue;
    }
    parts.push_back(part);
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

std::string env_key(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// "net_admin" and "NET_ADMIN" as the CRI sends them, "CAP_NET_ADMIN" as the
// spec needs; an already prefixed name is kept rather than doubled.
std::string capability_name(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  return name.starts_with("CAP_") ? name : "CAP_" + name;
}

bool is_all(const std::string& name) {
  return name.size() == 3 && std::toupper(static_cast<unsigned char>(name[0])) == 'A' &&
         std::toupper(static_cast<unsigned char>(name[1])) == 'L' &&
         std::toupper(static_cast<unsigned char>(name[2])) == 'L';
}

bool contains_all(const std::vector<std::string>& names) { return std::ranges::any_of(names, is_all); }

constexpr const char* kCapabilitySets[] = {"bounding", "effective", "permitted"};

json& capabilities_of(json& spec) {
  json& caps = spec["process"]["capabilities"];
  for (const char* set : kCapabilitySets) {
    if (!caps.contains(set) || caps[set].is_null()) caps[set] = json::array();
  }
  return caps;
}

void set_all_capability_sets(json& spec, const std::vector<std::string>& caps) {
  json& sets = capabilities_of(spec);
  for (const char* set : kCapabilitySets) sets[set] = string_array(caps);
}

json& namespaces_of(json& spec) {
  json& namespaces = spec["linux"]["namespaces"];
  if (namespaces.is_null()) namespaces = json::array();
  return namespaces;
}

json& resources_of(json& spec) {
  json& resources = spec["linux"]["resources"];
  if (resources.is_null()) resources = json::object();
  return resources;
}

// Flips "ro" to "rw" on mounts of this type (containerd's WithWriteableSysfs
// and WithWriteableCgroupfs).
void make_mounts_writable(json& spec, std::string_view type) {
  if (!spec.contains("mounts")) return;
  for (json& mount : spec["mounts"]) {
    if (mount.value("type", "") != type || !mount.contains("options")) continue;
    for (json& option : mount["options"]) {
      if (option == "ro") option = "rw";
    }
  }
}

}  // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE",
  };
  return caps;
}

const std::vector<std::string>& known_capabilities() {
  // Indexed by capability number (linux/capability.h).
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",
      "CAP_DAC_OVERRIDE",
      "CAP_DAC_READ_SEARCH",
      "CAP_FOWNER",
      "CAP_FSETID",
      "CAP_KILL",
      "CAP_SETGID",
      "CAP_SETUID",
      "CAP_SETPCAP",
      "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST",
      "CAP_NET_ADMIN",
      "CAP_NET_RAW",
      "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",
      "CAP_SYS_MODULE",
      "CAP_SYS_RAWIO",
      "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",
      "CAP_SYS_ADMIN",
      "CAP_SYS_BOOT",
      "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",
      "CAP_SYS_TTY_CONFIG",
      "CAP_MKNOD",
      "CAP_LEASE",
      "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",
      "CAP_SETFCAP",
      "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN",
      "CAP_SYSLOG",
      "CAP_WAKE_ALARM",
      "CAP_BLOCK_SUSPEND",
      "CAP_AUDIT_READ",
      "CAP_PERFMON",
      "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE",
  };
  return caps;
}

std::vector<std::string> current_capabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t bounding = 0;
  bool found = false;
  while (std::getline(status, line)) {
    if (line.starts_with("CapBnd:")) {
      bounding = std::stoull(line.substr(7), nullptr, 16);
      found = true;
      break;
    }
  }
  // Without procfs, fall back to every known capability (cap.Current's choice too).
  if (!found) return known_capabilities();
  std::vector<std::string> caps;
  const auto& known = known_capabilities();
  for (size_t bit = 0; bit < known.size(); ++bit) {
    if (bounding & (uint64_t{1} << bit)) caps.push_back(known[bit]);
  }
  return caps;
}

nlohmann::json default_unix_spec(const std::string& id, std::string_view namespace_name) {
  const json caps = string_array(default_capabilities());
  json spec = {
      {"ociVersion", kOciVersion},
      {"process",
       {
           {"terminal", false},
           {"user", {{"uid", 0}, {"gid", 0}}},
           {"args", json::array()},
           {"env", json::array({kDefaultPathEnv})},
           {"cwd", "/"},
           {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
           {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
           {"noNewPrivileges", true},
       }},
      {"root", {{"path", "rootfs"}}},
      {"mounts", default_mounts()},
      {"linux",
       {
           {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
           {"cgroupsPath", clean_path("/" + std::string(namespace_name) + "/" + id)},
           {"namespaces", json::array({{{"type", "pid"}},
                                       {{"type", "ipc"}},
                                       {{"type", "uts"}},
                                       {{"type", "mount"}},
                                       {{"type", "network"}}})},
           {"maskedPaths", json::array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"})},
           {"readonlyPaths",
            json::array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})},
       }},
  };
  return spec;
}

void set_process_args(nlohmann::json& spec, const std::vector<std::string>& args) {
  json& process = spec["process"];
  process["args"] = string_array(args);
  if (process.contains("commandLine")) process.erase("commandLine");
}

void set_env(nlohmann::json& spec, const std::vector<std::string>& env) {
  if (env.empty()) return;
  json& current = spec["process"]["env"];
  std::vector<std::string> merged;
  if (current.is_array()) merged = current.get<std::vector<std::string>>();
  std::vector<bool> unset(merged.size(), false);
  for (const std::string& entry : env) {
    const bool is_assignment = entry.find('=') != std::string::npos;
    const std::string key = env_key(entry);
    auto it = std::ranges::find_if(merged, [&](const std::string& e) { return env_key(e) == key; });
    if (!is_assignment) {
      if (it != merged.end()) unset[it - merged.begin()] = true;
      continue;
    }
    if (it != merged.end()) {
      *it = entry;
      // A key set again after being unset is live again, as its slot is reused.
      unset[it - merged.begin()] = false;
    } else {
      merged.push_back(entry);
      unset.push_back(false);
    }
  }
  std::vector<std::string> result;
  for (size_t i = 0; i < merged.size(); ++i) {
    if (!unset[i]) result.push_back(merged[i]);
  }
  current = string_array(result);
}

void set_cwd(nlohmann::json& spec, const std::string& cwd) { spec["process"]["cwd"] = cwd; }

void set_user(nlohmann::json& spec, uint32_t uid, uint32_t gid,
              const std::vector<uint32_t>& additional_gids) {
  json user = {{"uid", uid}, {"gid", gid}};
  if (!additional_gids.empty()) user["additionalGids"] = additional_gids;
  spec["process"]["user"] = std::move(user);
}

void set_hostname(nlohmann::json& spec, const std::string& hostname) { spec["hostname"] = hostname; }

void set_namespace_path(nlohmann::json& spec, std::string_view type, const std::string& path) {
  json entry = {{"type", type}};
  if (!path.empty()) entry["path"] = path;
  json& namespaces = namespaces_of(spec);
  for (json& ns : namespaces) {
    if (ns.value("type", "") == type) {
      ns = std::move(entry);
      return;
    }
  }
  namespaces.push_back(std::move(entry));
}

void remove_namespace(nlohmann::json& spec, std::string_view type) {
  json& namespaces = namespaces_of(spec);
  json kept = json::array();
  for (const json& ns : namespaces) {
    if (ns.value("type", "") != type) kept.push_back(ns);
  }
  namespaces = std::move(kept);
}

errdefs::Status add_mount(nlohmann::json& spec, const Mount& mount) {
  if (auto status = validate_mount_destination(mount.destination); !status.ok()) return status;
  const std::string destination = clean_path(mount.destination);
  json kept = json::array();
  if (spec.contains("mounts")) {
    for (const json& existing : spec["mounts"]) {
      const std::string other = clean_path(existing.value("destination", ""));
      if (other == destination) continue;
      // A mount over /dev hides the default mounts beneath it; keeping them
      // would make the runtime mount them onto the new /dev.
      if (destination == "/dev" && other.starts_with("/dev/")) continue;
      kept.push_back(existing);
    }
  }
  json entry = {{"destination", mount.destination}, {"type", mount.type}, {"source", mount.source}};
  if (!mount.options.empty()) entry["options"] = string_array(mount.options);
  kept.push_back(std::move(entry));
  spec["mounts"] = std::move(kept);
  return errdefs::Status::Ok();
}

void remove_mount(nlohmann::json& spec, std::string_view destination) {
  if (!spec.contains("mounts")) return;
  const std::string target = clean_path(destination);
  json kept = json::array();
  for (const json& existing : spec["mounts"]) {
    if (clean_path(existing.value("destination", "")) != target) kept.push_back(existing);
  }
  spec["mounts"] = std::move(kept);
}

void set_readonly_rootfs(nlohmann::json& spec, bool readonly) { spec["root"]["readonly"] = readonly; }

void set_no_new_privileges(nlohmann::json& spec, bool no_new_privileges) {
  spec["process"]["noNewPrivileges"] = no_new_privileges;
}

void set_capabilities(nlohmann::json& spec, const std::vector<std::string>& add,
                      const std::vector<std::string>& drop,
                      const std::vector<std::string>& all_capabilities) {
  if (contains_all(add)) set_all_capability_sets(spec, all_capabilities);
  if (contains_all(drop)) set_all_capability_sets(spec, {});
  json& sets = capabilities_of(spec);
  for (const std::string& name : add) {
    if (is_all(name)) continue;
    const std::string cap = capability_name(name);
    for (const char* set : kCapabilitySets) {
      json& list = sets[set];
      if (std::find(list.begin(), list.end(), cap) == list.end()) list.push_back(cap);
    }
  }
  for (const std::string& name : drop) {
    if (is_all(name)) continue;
    const std::string cap = capability_name(name);
    for (const char* set : kCapabilitySets) {
      json& list = sets[set];
      json kept = json::array();
      for (const json& c : list) {
        if (c != cap) kept.push_back(c);
      }
      list = std::move(kept);
    }
  }
}

void set_privileged(nlohmann::json& spec) {
  set_all_capability_sets(spec, current_capabilities());
  clear_masked_paths(spec);
  clear_readonly_paths(spec);
  make_mounts_writable(spec, "sysfs");
  make_mounts_writable(spec, "cgroup");
  set_seccomp_unconfined(spec);
  json& process = spec["process"];
  for (const char* label : {"selinuxLabel", "apparmorProfile"}) {
    if (process.contains(label)) process.erase(label);
  }
  resources_of(spec)["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
}

void clear_masked_paths(nlohmann::json& spec) {
  if (spec.contains("linux")) spec["linux"].erase("maskedPaths");
}

void clear_readonly_paths(nlohmann::json& spec) {
  if (spec.contains("linux")) spec["linux"].erase("readonlyPaths");
}

void set_cgroups_path(nlohmann::json& spec, const std::string& path) { spec["linux"]["cgroupsPath"] = path; }

void set_oom_score_adj(nlohmann::json& spec, int oom_score_adj) {
  spec["process"]["oomScoreAdj"] = oom_score_adj;
}

void set_sysctls(nlohmann::json& spec, const std::map<std::string, std::string>& sysctls) {
  if (sysctls.empty()) return;
  json& current = spec["linux"]["sysctl"];
  if (current.is_null()) current = json::object();
  for (const auto& [name, value] : sysctls) current[name] = value;
}

void set_annotations(nlohmann::json& spec, const std::map<std::string, std::string>& annotations) {
  if (annotations.empty()) return;
  json& current = spec["annotations"];
  if (current.is_null()) current = json::object();
  for (const auto& [key, value] : annotations) current[key] = value;
}

void set_seccomp(nlohmann::json& spec, const nlohmann::json& profile) { spec["linux"]["seccomp"] = profile; }

void set_seccomp_unconfined(nlohmann::json& spec) {
  if (spec.contains("linux")) spec["linux"].erase("seccomp");
}

void set_selinux_label(nlohmann::json& /*spec*/, const std::string& /*label*/) {}

void set_resources(nlohmann::json& spec, const Resources& resources, bool swap_controller_available) {
  json& out = resources_of(spec);
  auto cpu = [&]() -> json& { return out["cpu"]; };
  if (resources.cpu_period != 0) cpu()["period"] = static_cast<uint64_t>(resources.cpu_period);
  if (resources.cpu_quota != 0) cpu()["quota"] = resources.cpu_quota;
  if (resources.cpu_shares != 0) cpu()["shares"] = static_cast<uint64_t>(resources.cpu_shares);
  if (!resources.cpuset_cpus.empty()) cpu()["cpus"] = resources.cpuset_cpus;
  if (!resources.cpuset_mems.empty()) cpu()["mems"] = resources.cpuset_mems;
  if (resources.memory_limit_in_bytes != 0) {
    json& memory = out["memory"];
    memory["limit"] = resources.memory_limit_in_bytes;
    if (swap_controller_available) memory["swap"] = resources.memory_limit_in_bytes;
  }
  if (!resources.hugepage_limits.empty()) {
    json& limits = out["hugepageLimits"];
    if (limits.is_null()) limits = json::array();
    for (const HugepageLimit& limit : resources.hugepage_limits) {
      limits.push_back({{"pageSize", limit.page_size}, {"limit", limit.limit}});
    }
  }
  if (!resources.unified.empty()) {
    json& unified = out["unified"];
    if (unified.is_null()) unified = json::object();
    for (const auto& [key, value] : resources.unified) unified[key] = value;
  }
}

errdefs::Status validate_mount_destination(std::string_view destination) {
  if (destination.empty() || destination.front() != '/') {
    return errdefs::InvalidArgument("mount destination \"" + std::string(destination) + "\" is not absolute");
  }
  return errdefs::Status::Ok();
}

namespace {

bool is_ipc_sysctl(std::string_view name) {
  return name.starts_with("kernel.shm") || name.starts_with("kernel.msg") || name == "kernel.sem" ||
         name.starts_with("fs.mqueue.");
}

bool is_net_sysctl(std::string_view name) { return name.starts_with("net."); }

}  // namespace

bool is_namespaced_sysctl(std::string_view name) { return is_ipc_sysctl(name) || is_net_sysctl(name); }

errdefs::Status validate_sysctl(std::string_view name, bool host_network, bool host_ipc) {
  const std::string quoted = "sysctl \"" + std::string(name) + "\"";
  if (!is_namespaced_sysctl(name)) {
    return errdefs::InvalidArgument(quoted + " is not namespaced, so a pod may not set it");
  }
  if (is_net_sysctl(name) && host_network) {
    return errdefs::InvalidArgument(quoted + " would change the host's network namespace");
  }
  if (is_ipc_sysctl(name) && host_ipc) {
    return errdefs::InvalidArgument(quoted + " would change the host's IPC namespace");
  }
  return errdefs::Status::Ok();
}

}  // namespace ctrd::oci
