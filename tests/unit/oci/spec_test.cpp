// Unit tests of oci/spec.h: containerd 1.6's default spec and the modifiers.
#include "oci/spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace ctrd::oci {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;

Strings strings(const json& j) { return j.get<Strings>(); }

Strings mount_destinations(const json& spec) {
  Strings out;
  for (const json& m : spec["mounts"]) out.push_back(m["destination"]);
  return out;
}

const json* mount_at(const json& spec, const std::string& destination) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

Strings namespace_types(const json& spec) {
  Strings out;
  for (const json& ns : spec["linux"]["namespaces"]) out.push_back(ns["type"]);
  return out;
}

const Strings kDefaultCaps = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

TEST(DefaultSpec, ProcessIsContainerdsDefault) {
  const json spec = default_unix_spec("c1");
  EXPECT_EQ(spec["ociVersion"], "1.0.2-dev");
  const json& process = spec["process"];
  EXPECT_EQ(process["terminal"], false);
  EXPECT_EQ(process["user"], json({{"uid", 0}, {"gid", 0}}));
  EXPECT_EQ(process["cwd"], "/");
  EXPECT_EQ(strings(process["env"]),
            Strings{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
  EXPECT_TRUE(process["args"].is_array());
  EXPECT_TRUE(process["args"].empty());
  EXPECT_EQ(process["noNewPrivileges"], true);
  for (const char* set : {"bounding", "effective", "permitted"}) {
    EXPECT_EQ(strings(process["capabilities"][set]), kDefaultCaps) << set;
  }
  EXPECT_FALSE(process["capabilities"].contains("inheritable"));
  EXPECT_FALSE(process["capabilities"].contains("ambient"));
  EXPECT_EQ(process["rlimits"], json::parse(R"([{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}])"));
  EXPECT_EQ(spec["root"], json({{"path", "rootfs"}}));
}

TEST(DefaultSpec, MountsAreContainerdsList) {
  const json spec = default_unix_spec("c1");
  EXPECT_EQ(mount_destinations(spec),
            (Strings{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"}));
  struct Expected {
    const char* destination;
    const char* type;
    const char* source;
    Strings options;
  };
  const std::vector<Expected> expected = {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
      {"/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
  };
  for (const Expected& e : expected) {
    const json* m = mount_at(spec, e.destination);
    ASSERT_NE(m, nullptr) << e.destination;
    EXPECT_EQ((*m)["type"], e.type) << e.destination;
    EXPECT_EQ((*m)["source"], e.source) << e.destination;
    EXPECT_EQ(strings((*m)["options"]), e.options) << e.destination;
  }
}

TEST(DefaultSpec, LinuxSectionIsContainerdsDefault) {
  const json spec = default_unix_spec("c1");
  const json& linux = spec["linux"];
  EXPECT_EQ(
      strings(linux["maskedPaths"]),
      (Strings{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
               "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}));
  EXPECT_EQ(strings(linux["readonlyPaths"]),
            (Strings{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
  EXPECT_EQ(namespace_types(spec), (Strings{"pid", "ipc", "uts", "mount", "network"}));
  for (const json& ns : linux["namespaces"]) EXPECT_FALSE(ns.contains("path"));
  EXPECT_EQ(linux["resources"]["devices"], json::parse(R"([{"allow":false,"access":"rwm"}])"));
  EXPECT_EQ(linux["cgroupsPath"], "/k8s.io/c1");
  EXPECT_EQ(default_unix_spec("c2", "default")["linux"]["cgroupsPath"], "/default/c2");
}

TEST(DefaultSpec, DefaultCapabilitiesMatch) { EXPECT_EQ(default_capabilities(), kDefaultCaps); }

TEST(Modifiers, ProcessArgsReplaceAndDropCommandLine) {
  json spec = default_unix_spec("c");
  spec["process"]["commandLine"] = "x";
  set_process_args(spec, {"/bin/sh", "-c", "true"});
  EXPECT_EQ(strings(spec["process"]["args"]), (Strings{"/bin/sh", "-c", "true"}));
  EXPECT_FALSE(spec["process"].contains("commandLine"));
  set_process_args(spec, {"/pause"});
  EXPECT_EQ(strings(spec["process"]["args"]), Strings{"/pause"});
}

TEST(Modifiers, EnvMergesLaterWins) {
  json spec = default_unix_spec("c");
  // Image env then container env, as the CRI passes them.
  set_env(spec, {"PATH=/bin", "A=1", "B=2"});
  set_env(spec, {"A=3", "C=4"});
  EXPECT_EQ(strings(spec["process"]["env"]), (Strings{"PATH=/bin", "A=3", "B=2", "C=4"}));
  set_env(spec, {"D=1", "D=2"});
  EXPECT_EQ(strings(spec["process"]["env"]).back(), "D=2");
  // A bare key unsets; a value containing '=' is kept whole.
  set_env(spec, {"B", "E=x=y"});
  EXPECT_EQ(strings(spec["process"]["env"]), (Strings{"PATH=/bin", "A=3", "C=4", "D=2", "E=x=y"}));
  set_env(spec, {});
  EXPECT_EQ(spec["process"]["env"].size(), 5u);
}

TEST(Modifiers, CwdUserHostname) {
  json spec = default_unix_spec("c");
  set_cwd(spec, "/work");
  set_user(spec, 1000, 100, {});
  set_hostname(spec, "pod-a");
  EXPECT_EQ(spec["process"]["cwd"], "/work");
  EXPECT_EQ(spec["process"]["user"], json({{"uid", 1000}, {"gid", 100}}));
  EXPECT_EQ(spec["hostname"], "pod-a");
  set_user(spec, 1, 2, {3, 4});
  EXPECT_EQ(spec["process"]["user"]["additionalGids"], json({3, 4}));
}

TEST(Modifiers, NamespacePathAndRemove) {
  json spec = default_unix_spec("c");
  set_namespace_path(spec, "network", "/var/run/netns/cni-1");
  remove_namespace(spec, "pid");
  EXPECT_EQ(namespace_types(spec), (Strings{"ipc", "uts", "mount", "network"}));
  EXPECT_EQ(spec["linux"]["namespaces"][3], json({{"type", "network"}, {"path", "/var/run/netns/cni-1"}}));
  set_namespace_path(spec, "pid", "/proc/42/ns/pid");
  EXPECT_EQ(namespace_types(spec), (Strings{"ipc", "uts", "mount", "network", "pid"}));
  set_namespace_path(spec, "network", "");
  EXPECT_FALSE(spec["linux"]["namespaces"][3].contains("path"));
  remove_namespace(spec, "user");  // absent: nothing changes
  EXPECT_EQ(spec["linux"]["namespaces"].size(), 5u);
}

TEST(Modifiers, AddMountReplacesSameDestination) {
  json spec = default_unix_spec("c");
  ASSERT_TRUE(add_mount(spec, {"/dev/shm/", "bind", "/run/pod/shm", {"rbind", "ro"}}).ok());
  const Strings destinations = mount_destinations(spec);
  EXPECT_EQ(std::count(destinations.begin(), destinations.end(), "/dev/shm"), 0);
  EXPECT_EQ(destinations.back(), "/dev/shm/");
  EXPECT_EQ(spec["mounts"].back()["source"], "/run/pod/shm");
  EXPECT_EQ(destinations.size(), 7u);

  ASSERT_TRUE(add_mount(spec, {"/etc/hosts", "bind", "/h", {"rbind"}}).ok());
  EXPECT_EQ(spec["mounts"].size(), 8u);

  // A supplied /dev hides the defaults under it.
  ASSERT_TRUE(add_mount(spec, {"/dev", "bind", "/dev", {"rbind"}}).ok());
  EXPECT_EQ(mount_destinations(spec), (Strings{"/proc", "/sys", "/run", "/etc/hosts", "/dev"}));

  EXPECT_EQ(add_mount(spec, {"relative", "bind", "/x", {}}).code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(spec["mounts"].size(), 5u);
  remove_mount(spec, "/run");
  EXPECT_EQ(mount_destinations(spec), (Strings{"/proc", "/sys", "/etc/hosts", "/dev"}));
}

TEST(Modifiers, ReadonlyRootfsAndNoNewPrivileges) {
  json spec = default_unix_spec("c");
  set_readonly_rootfs(spec, true);
  set_no_new_privileges(spec, false);
  EXPECT_EQ(spec["root"]["readonly"], true);
  EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
}

Strings caps_of(const json& spec, const char* set = "bounding") {
  return strings(spec["process"]["capabilities"][set]);
}

TEST(Capabilities, AddAndDropIndividual) {
  json spec = default_unix_spec("c");
  set_capabilities(spec, {"NET_ADMIN", "sys_time", "CHOWN"}, {"KILL", "cap_mknod"});
  for (const char* set : {"bounding", "effective", "permitted"}) {
    Strings caps = caps_of(spec, set);
    EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_NET_ADMIN"), caps.end());
    EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_SYS_TIME"), caps.end());
    EXPECT_EQ(std::count(caps.begin(), caps.end(), "CAP_CHOWN"), 1);
    EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_KILL"), caps.end());
    EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_MKNOD"), caps.end());
    EXPECT_EQ(caps.size(), kDefaultCaps.size());
  }
}

TEST(Capabilities, DropAllThenAdd) {
  json spec = default_unix_spec("c");
  set_capabilities(spec, {"NET_BIND_SERVICE"}, {"ALL"});
  EXPECT_EQ(caps_of(spec, "effective"), Strings{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(caps_of(spec, "permitted"), Strings{"CAP_NET_BIND_SERVICE"});
  set_capabilities(spec, {}, {"all"});
  EXPECT_TRUE(caps_of(spec).empty());
}

TEST(Capabilities, AddAllThenDrop) {
  json spec = default_unix_spec("c");
  const Strings all = {"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"};
  set_capabilities(spec, {"ALL"}, {"SYS_ADMIN"}, all);
  EXPECT_EQ(caps_of(spec), (Strings{"CAP_CHOWN", "CAP_KILL"}));
  // Both ALL: add ALL is applied first, so drop ALL wins.
  set_capabilities(spec, {"ALL"}, {"ALL"}, all);
  EXPECT_TRUE(caps_of(spec, "permitted").empty());
}

TEST(Capabilities, CurrentIsKnownSubset) {
  const Strings current = current_capabilities();
  const Strings& known = known_capabilities();
  EXPECT_EQ(known.size(), 41u);
  EXPECT_EQ(known[21], "CAP_SYS_ADMIN");
  EXPECT_EQ(known[40], "CAP_CHECKPOINT_RESTORE");
  for (const std::string& c : current) EXPECT_NE(std::find(known.begin(), known.end(), c), known.end()) << c;
}

TEST(Modifiers, PrivilegedClearsMasksAndAllowsDevices) {
  json spec = default_unix_spec("c");
  set_seccomp(spec, json::parse(R"({"defaultAction":"SCMP_ACT_ERRNO"})"));
  spec["process"]["apparmorProfile"] = "cri-containerd.apparmor.d";
  set_privileged(spec);
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));
  EXPECT_FALSE(spec["linux"].contains("seccomp"));
  EXPECT_FALSE(spec["process"].contains("apparmorProfile"));
  EXPECT_EQ(spec["linux"]["resources"]["devices"], json::parse(R"([{"allow":true,"access":"rwm"}])"));
  EXPECT_EQ(caps_of(spec), current_capabilities());
  EXPECT_EQ(caps_of(spec, "effective"), current_capabilities());
  const json* sys = mount_at(spec, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ(strings((*sys)["options"]), (Strings{"nosuid", "noexec", "nodev", "rw"}));
}

TEST(Modifiers, ClearPathsIndividually) {
  json spec = default_unix_spec("c");
  clear_masked_paths(spec);
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_TRUE(spec["linux"].contains("readonlyPaths"));
  clear_readonly_paths(spec);
  EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));
}

TEST(Modifiers, CgroupsOomSysctlsAnnotations) {
  json spec = default_unix_spec("c");
  set_cgroups_path(spec, "kubepods-besteffort.slice:cri-containerd:c");
  set_oom_score_adj(spec, -998);
  set_sysctls(spec, {{"net.ipv4.ip_forward", "1"}, {"kernel.shmmax", "100"}});
  set_sysctls(spec, {{"net.ipv4.ip_forward", "0"}});
  set_annotations(spec, {{"io.kubernetes.cri.container-type", "sandbox"}});
  set_annotations(spec, {{"io.kubernetes.cri.sandbox-id", "c"}});
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "kubepods-besteffort.slice:cri-containerd:c");
  EXPECT_EQ(spec["process"]["oomScoreAdj"], -998);
  EXPECT_EQ(spec["linux"]["sysctl"], json({{"kernel.shmmax", "100"}, {"net.ipv4.ip_forward", "0"}}));
  EXPECT_EQ(spec["annotations"].size(), 2u);
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.container-type"], "sandbox");
}

TEST(Modifiers, SeccompAndSelinux) {
  json spec = default_unix_spec("c");
  const json profile = json::parse(R"({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]})");
  set_seccomp(spec, profile);
  EXPECT_EQ(spec["linux"]["seccomp"], profile);
  set_seccomp_unconfined(spec);
  EXPECT_FALSE(spec["linux"].contains("seccomp"));
  const json before = spec;
  set_selinux_label(spec, "system_u:system_r:container_t:s0");
  EXPECT_EQ(spec, before);
}

TEST(Modifiers, Resources) {
  json spec = default_unix_spec("c");
  Resources r;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.cpu_shares = 512;
  r.cpuset_cpus = "0-1";
  r.cpuset_mems = "0";
  r.memory_limit_in_bytes = 64 << 20;
  r.hugepage_limits = {{"2MB", 4 << 20}};
  r.unified = {{"memory.high", "max"}};
  set_resources(spec, r, /*swap_controller_available=*/true);
  const json& res = spec["linux"]["resources"];
  EXPECT_EQ(res["cpu"],
            json::parse(R"({"period":100000,"quota":50000,"shares":512,"cpus":"0-1","mems":"0"})"));
  EXPECT_EQ(res["memory"], json::parse(R"({"limit":67108864,"swap":67108864})"));
  EXPECT_EQ(res["hugepageLimits"], json::parse(R"([{"pageSize":"2MB","limit":4194304}])"));
  EXPECT_EQ(res["unified"], json::parse(R"({"memory.high":"max"})"));
  EXPECT_EQ(res["devices"], json::parse(R"([{"allow":false,"access":"rwm"}])"));

  json plain = default_unix_spec("c");
  set_resources(plain, Resources{.memory_limit_in_bytes = 1 << 20}, false);
  EXPECT_EQ(plain["linux"]["resources"]["memory"], json::parse(R"({"limit":1048576})"));
  EXPECT_FALSE(plain["linux"]["resources"].contains("cpu"));
  json none = default_unix_spec("c");
  set_resources(none, Resources{}, true);
  EXPECT_EQ(none, default_unix_spec("c"));
}

TEST(Validation, MountDestination) {
  EXPECT_TRUE(validate_mount_destination("/data").ok());
  EXPECT_EQ(validate_mount_destination("data").code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(validate_mount_destination("").code(), errdefs::Code::kInvalidArgument);
}

TEST(Validation, Sysctls) {
  for (const char* name : {"kernel.shmmax", "kernel.shm_rmid_forced", "kernel.msgmax", "kernel.sem",
                           "fs.mqueue.msg_max", "net.ipv4.ip_local_port_range"}) {
    EXPECT_TRUE(is_namespaced_sysctl(name)) << name;
    EXPECT_TRUE(validate_sysctl(name, false, false).ok()) << name;
  }
  for (const char* name : {"kernel.pid_max", "vm.swappiness", "kernel.semx", "fs.file-max"}) {
    EXPECT_FALSE(is_namespaced_sysctl(name)) << name;
    EXPECT_EQ(validate_sysctl(name, false, false).code(), errdefs::Code::kInvalidArgument) << name;
  }
  EXPECT_EQ(validate_sysctl("net.core.somaxconn", true, false).code(), errdefs::Code::kInvalidArgument);
  EXPECT_TRUE(validate_sysctl("net.core.somaxconn", false, true).ok());
  EXPECT_EQ(validate_sysctl("kernel.msgmax", false, true).code(), errdefs::Code::kInvalidArgument);
  EXPECT_TRUE(validate_sysctl("kernel.msgmax", true, false).ok());
}

}  // namespace
}  // namespace ctrd::oci
