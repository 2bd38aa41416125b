// Unit tests of cri/pod_spec.h and cri/seccomp_profile.h: the OCI specs of
// pod sandboxes and containers, checked rule by rule against containerd 1.6.
#include "cri/pod_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cri/seccomp_profile.h"
#include "oci/spec.h"
#include "support/temp_dir.h"

namespace ctrd::cri {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::runtime::v1;
using nlohmann::json;
using Strings = std::vector<std::string>;

Strings strings(const json& j) { return j.get<Strings>(); }

const json* mount_at(const json& spec, const std::string& destination) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

// The namespace of this type, or null when the spec shares the host's.
const json* namespace_of(const json& spec, const std::string& type) {
  for (const json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return &ns;
  }
  return nullptr;
}

bool contains(const Strings& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Every syscall name the profile allows, whatever its argument rules.
Strings allowed_syscalls(const json& profile) {
  Strings names;
  for (const json& rule : profile["syscalls"]) {
    if (rule["action"] != "SCMP_ACT_ALLOW") continue;
    for (const json& name : rule["names"]) names.push_back(name);
  }
  return names;
}

v1::PodSandboxConfig pod_config() {
  v1::PodSandboxConfig config;
  config.mutable_metadata()->set_name("web");
  config.mutable_metadata()->set_namespace_("default");
  config.mutable_metadata()->set_uid("uid-1");
  config.set_hostname("web-host");
  config.set_log_directory("/var/log/pods/web");
  return config;
}

images::ImageConfig pause_image() {
  images::ImageConfig image;
  image.entrypoint = {"/pause"};
  image.env = {"PATH=/bin"};
  image.working_dir = "/w";
  return image;
}

struct SandboxFixture {
  v1::PodSandboxConfig config = pod_config();
  images::ImageConfig image = pause_image();

  SandboxSpecInput input() {
    SandboxSpecInput in;
    in.id = "sb1";
    in.config = &config;
    in.image = &image;
    in.netns_path = "/var/run/netns/cni-1";
    in.files.resolv_conf = "/state/sb1/resolv.conf";
    in.files.shm = "/state/sb1/shm";
    return in;
  }
};

TEST(PodSpec, SandboxTakesProcessFromImageAndIsReadOnly) {
  SandboxFixture f;
  f.image.cmd = {"-v"};
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(strings((*spec)["process"]["args"]), (Strings{"/pause", "-v"}));
  EXPECT_EQ(strings((*spec)["process"]["env"]), (Strings{"PATH=/bin"}));
  EXPECT_EQ((*spec)["process"]["cwd"], "/w");
  EXPECT_EQ((*spec)["process"]["noNewPrivileges"], true);
  EXPECT_FALSE((*spec)["process"].contains("rlimits"));
  EXPECT_EQ((*spec)["root"]["path"], "rootfs");
  EXPECT_EQ((*spec)["root"]["readonly"], true);
  EXPECT_EQ((*spec)["hostname"], "web-host");
  EXPECT_EQ((*spec)["linux"]["resources"]["cpu"]["shares"], 2);
  EXPECT_EQ((*spec)["process"]["oomScoreAdj"], -998);
  EXPECT_EQ((*spec)["linux"]["cgroupsPath"], "/k8s.io/sb1");
  EXPECT_EQ(mount_at(*spec, "/run"), nullptr);
  EXPECT_FALSE((*spec)["linux"].contains("seccomp"));
}

TEST(PodSpec, SandboxAnnotationsAndMatchedPodAnnotations) {
  SandboxFixture f;
  (*f.config.mutable_annotations())["io.kubernetes.cri.untrusted"] = "x";
  (*f.config.mutable_annotations())["other"] = "y";
  f.config.mutable_linux()->mutable_resources()->set_cpu_shares(512);
  SandboxSpecInput in = f.input();
  in.pod_annotation_patterns = {"io.kubernetes.cri.*"};
  auto spec = sandbox_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const json& a = (*spec)["annotations"];
  EXPECT_EQ(a["io.kubernetes.cri.container-type"], "sandbox");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-id"], "sb1");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-name"], "web");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-namespace"], "default");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-uid"], "uid-1");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-log-directory"], "/var/log/pods/web");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-cpu-shares"], "512");
  EXPECT_EQ(a["io.kubernetes.cri.untrusted"], "x");
  EXPECT_FALSE(a.contains("other"));
}

TEST(PodSpec, SandboxWithoutImageRunsPauseArgs) {
  SandboxFixture f;
  SandboxSpecInput in = f.input();
  in.image = nullptr;
  in.pause_args = {"/pause"};
  auto spec = sandbox_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(strings((*spec)["process"]["args"]), (Strings{"/pause"}));
  EXPECT_TRUE((*spec)["process"]["env"].empty());

  in.pause_args.clear();
  EXPECT_EQ(sandbox_spec(in).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, SandboxImageWithoutCommandIsRefused) {
  SandboxFixture f;
  f.image.entrypoint.clear();
  EXPECT_EQ(sandbox_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, SandboxPodNetworkJoinsNetnsPath) {
  SandboxFixture f;
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok());
  ASSERT_NE(namespace_of(*spec, "network"), nullptr);
  EXPECT_EQ((*namespace_of(*spec, "network"))["path"], "/var/run/netns/cni-1");
  EXPECT_NE(namespace_of(*spec, "uts"), nullptr);
  EXPECT_NE(namespace_of(*spec, "pid"), nullptr);
  EXPECT_NE(namespace_of(*spec, "ipc"), nullptr);
}

TEST(PodSpec, SandboxHostNamespacesAreRemoved) {
  SandboxFixture f;
  auto* ns = f.config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::NODE);
  ns->set_pid(v1::NODE);
  ns->set_ipc(v1::NODE);
  SandboxSpecInput in = f.input();
  in.netns_path.clear();
  in.files.shm.clear();
  auto spec = sandbox_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(namespace_of(*spec, "network"), nullptr);
  EXPECT_EQ(namespace_of(*spec, "uts"), nullptr);
  EXPECT_EQ(namespace_of(*spec, "pid"), nullptr);
  EXPECT_EQ(namespace_of(*spec, "ipc"), nullptr);
  EXPECT_NE(namespace_of(*spec, "mount"), nullptr);
  // runc cannot set a hostname without its own UTS namespace.
  EXPECT_FALSE(spec->contains("hostname"));
  const json* shm = mount_at(*spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ((*shm)["source"], "/dev/shm");
  EXPECT_EQ((*shm)["type"], "bind");
}

TEST(PodSpec, SandboxBindsShmAndResolvConfReadOnly) {
  SandboxFixture f;
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok());
  for (const auto& [destination, source] : std::map<std::string, std::string>{
           {"/dev/shm", "/state/sb1/shm"}, {"/etc/resolv.conf", "/state/sb1/resolv.conf"}}) {
    const json* m = mount_at(*spec, destination);
    ASSERT_NE(m, nullptr) << destination;
    EXPECT_EQ((*m)["source"], source);
    EXPECT_EQ(strings((*m)["options"]), (Strings{"rbind", "ro"}));
  }
  EXPECT_EQ(std::count_if((*spec)["mounts"].begin(), (*spec)["mounts"].end(),
                          [](const json& m) { return m["destination"] == "/dev/shm"; }),
            1);
}

TEST(PodSpec, SandboxOomScoreIsRestrictedToTheDaemons) {
  SandboxFixture f;
  SandboxSpecInput in = f.input();
  in.restrict_oom_score_adj = true;
  in.daemon_oom_score_adj = -500;
  auto spec = sandbox_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["oomScoreAdj"], -500);
  in.daemon_oom_score_adj = -999;
  EXPECT_EQ((*sandbox_spec(in))["process"]["oomScoreAdj"], -998);
}

TEST(PodSpec, SandboxSysctlsAreValidated) {
  SandboxFixture f;
  (*f.config.mutable_linux()->mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*spec)["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");

  (*f.config.mutable_linux()->mutable_sysctls())["kernel.panic"] = "1";
  EXPECT_EQ(sandbox_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);

  f.config.mutable_linux()->mutable_sysctls()->erase("kernel.panic");
  f.config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(v1::NODE);
  EXPECT_EQ(sandbox_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, SandboxUnprivilegedPortsSysctl) {
  SandboxFixture f;
  SandboxSpecInput in = f.input();
  in.enable_unprivileged_ports = true;
  auto spec = sandbox_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
}

TEST(PodSpec, SandboxUserFromSecurityContext) {
  SandboxFixture f;
  auto* sc = f.config.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(1000);
  sc->mutable_run_as_group()->set_value(3000);
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 1000);
  EXPECT_EQ((*spec)["process"]["user"]["gid"], 3000);

  sc->clear_run_as_user();
  EXPECT_EQ(sandbox_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, SandboxUserFromImage) {
  SandboxFixture f;
  f.image.user = "65535:65535";
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 65535);
  EXPECT_EQ((*spec)["process"]["user"]["gid"], 65535);
}

TEST(PodSpec, SandboxSupplementalGroupsWithoutUser) {
  SandboxFixture f;
  auto* sc = f.config.mutable_linux()->mutable_security_context();
  sc->add_supplemental_groups(20);
  sc->add_supplemental_groups(10);
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["user"]["additionalGids"], json::array({10, 20}));
}

TEST(PodSpec, SandboxSeccomp) {
  SandboxFixture f;
  auto* sc = f.config.mutable_linux()->mutable_security_context();
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  auto spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");

  sc->set_privileged(true);
  spec = sandbox_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE((*spec)["linux"].contains("seccomp"));

  sc->set_privileged(false);
  sc->clear_seccomp();
  SandboxSpecInput in = f.input();
  in.unset_seccomp_profile = "runtime/default";
  spec = sandbox_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE((*spec)["linux"].contains("seccomp"));
}

TEST(PodSpec, CgroupsPath) {
  EXPECT_EQ(cgroups_path("/kubepods/burstable/pod1", "c1", false), "/kubepods/burstable/pod1/c1");
  EXPECT_EQ(cgroups_path("/kubepods/", "c1", false), "/kubepods/c1");
  EXPECT_EQ(cgroups_path("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice", "c1", true),
            "kubepods-burstable-pod1.slice:cri-containerd:c1");
  EXPECT_EQ(cgroups_path("", "c1", false), "/k8s.io/c1");
  EXPECT_EQ(cgroups_path("", "c1", true), "system.slice:cri-containerd:c1");
}

TEST(PodSpec, AnnotationPatterns) {
  EXPECT_TRUE(annotation_pattern_matches("io.kubernetes.cri.*", "io.kubernetes.cri.x"));
  EXPECT_FALSE(annotation_pattern_matches("io.kubernetes.cri.*", "io.kubernetes.cri/x"));
  EXPECT_TRUE(annotation_pattern_matches("*", "anything.at-all"));
  EXPECT_TRUE(annotation_pattern_matches("a?c", "abc"));
  EXPECT_TRUE(annotation_pattern_matches("[a-c]x", "bx"));
  EXPECT_FALSE(annotation_pattern_matches("[^a-c]x", "bx"));
  EXPECT_TRUE(annotation_pattern_matches("a\\*", "a*"));
  EXPECT_FALSE(annotation_pattern_matches("a\\*", "ab"));
  EXPECT_FALSE(annotation_pattern_matches("[", "["));
  EXPECT_FALSE(annotation_pattern_matches("exact", "exactly"));
}

// A container in a pod, with the files the daemon would have prepared.
struct ContainerFixture {
  testing::TempDir dir;
  v1::PodSandboxConfig sandbox = pod_config();
  v1::ContainerConfig config;
  images::ImageConfig image;
  std::map<std::string, std::string> rootfs_files;

  ContainerFixture() {
    config.mutable_metadata()->set_name("app");
    image.entrypoint = {"/entry"};
    image.cmd = {"serve"};
    image.env = {"IMAGE=1"};
    for (const char* name : {"hostname", "hosts", "resolv.conf"}) std::ofstream(dir.sub(name)) << "x\n";
    dir.mkdir("shm");
  }

  ContainerSpecInput input() {
    ContainerSpecInput in;
    in.id = "c1";
    in.sandbox_id = "sb1";
    in.sandbox_pid = 42;
    in.config = &config;
    in.sandbox_config = &sandbox;
    in.image = &image;
    in.image_name = "docker.io/library/app:1";
    in.files = {dir.sub("hostname"), dir.sub("hosts"), dir.sub("resolv.conf"), dir.sub("shm")};
    in.read_rootfs_file = [this](const std::string& path) -> errdefs::StatusOr<std::string> {
      auto it = rootfs_files.find(path);
      if (it == rootfs_files.end()) return errdefs::NotFound(path);
      return it->second;
    };
    in.cgroup_v2 = false;
    in.node_hostname = "node-1";
    in.mount_propagation = [](const std::string&) -> errdefs::StatusOr<std::string> { return std::string(); };
    return in;
  }

  v1::LinuxContainerSecurityContext* security() { return config.mutable_linux()->mutable_security_context(); }
};

TEST(PodSpec, ContainerArgsCombineImageAndRequest) {
  struct Case {
    Strings entrypoint, cmd, command, args, expected;
  };
  const std::vector<Case> cases = {
      {{"/e"}, {"c"}, {}, {}, {"/e", "c"}},
      {{"/e"}, {"c"}, {"/x"}, {}, {"/x"}},
      {{"/e"}, {"c"}, {}, {"a"}, {"/e", "a"}},
      {{"/e"}, {"c"}, {"/x"}, {"a"}, {"/x", "a"}},
      {{}, {"c"}, {}, {}, {"c"}},
      {{""}, {"c"}, {}, {}, {"c"}},
      {{}, {}, {}, {"a"}, {"a"}},
  };
  for (const Case& c : cases) {
    ContainerFixture f;
    f.image.entrypoint = c.entrypoint;
    f.image.cmd = c.cmd;
    for (const auto& s : c.command) f.config.add_command(s);
    for (const auto& s : c.args) f.config.add_args(s);
    auto spec = container_spec(f.input());
    ASSERT_TRUE(spec.ok()) << spec.status().to_string();
    EXPECT_EQ(strings((*spec)["process"]["args"]), c.expected);
  }
  ContainerFixture f;
  f.image.entrypoint.clear();
  f.image.cmd.clear();
  auto spec = container_spec(f.input());
  EXPECT_EQ(spec.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("no command specified"), std::string::npos);
}

TEST(PodSpec, ContainerEnvCwdAndTty) {
  ContainerFixture f;
  auto* kv = f.config.add_envs();
  kv->set_key("IMAGE");
  kv->set_value("2");
  f.config.set_tty(true);
  f.image.working_dir = "/img";
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(strings((*spec)["process"]["env"]),
            (Strings{std::string(oci::kDefaultPathEnv), "TERM=xterm", "HOSTNAME=web-host", "IMAGE=2"}));
  EXPECT_EQ((*spec)["process"]["terminal"], true);
  EXPECT_EQ((*spec)["process"]["cwd"], "/img");
  EXPECT_EQ((*spec)["process"]["noNewPrivileges"], false);

  f.config.set_working_dir("/req");
  f.sandbox.clear_hostname();
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["cwd"], "/req");
  EXPECT_TRUE(contains(strings((*spec)["process"]["env"]), "HOSTNAME=node-1"));
}

TEST(PodSpec, ContainerAnnotations) {
  ContainerFixture f;
  (*f.sandbox.mutable_annotations())["pod.x"] = "1";
  (*f.config.mutable_annotations())["ctr.y"] = "2";
  (*f.config.mutable_annotations())["ctr/z"] = "3";
  ContainerSpecInput in = f.input();
  in.pod_annotation_patterns = {"pod.*"};
  in.container_annotation_patterns = {"ctr.*"};
  auto spec = container_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const json& a = (*spec)["annotations"];
  EXPECT_EQ(a["io.kubernetes.cri.container-type"], "container");
  EXPECT_EQ(a["io.kubernetes.cri.container-name"], "app");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-id"], "sb1");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-name"], "web");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-namespace"], "default");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-uid"], "uid-1");
  EXPECT_EQ(a["io.kubernetes.cri.image-name"], "docker.io/library/app:1");
  EXPECT_EQ(a["pod.x"], "1");
  EXPECT_EQ(a["ctr.y"], "2");
  EXPECT_FALSE(a.contains("ctr/z"));
}

TEST(PodSpec, ContainerJoinsSandboxNamespaces) {
  ContainerFixture f;
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*namespace_of(*spec, "network"))["path"], "/proc/42/ns/net");
  EXPECT_EQ((*namespace_of(*spec, "ipc"))["path"], "/proc/42/ns/ipc");
  EXPECT_EQ((*namespace_of(*spec, "uts"))["path"], "/proc/42/ns/uts");
  EXPECT_EQ((*namespace_of(*spec, "pid"))["path"], "/proc/42/ns/pid");
  EXPECT_FALSE(namespace_of(*spec, "mount")->contains("path"));
  EXPECT_EQ(namespace_of(*spec, "cgroup"), nullptr);

  f.security()->mutable_namespace_options()->set_pid(v1::CONTAINER);
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  ASSERT_NE(namespace_of(*spec, "pid"), nullptr);
  EXPECT_FALSE(namespace_of(*spec, "pid")->contains("path"));

  f.security()->mutable_namespace_options()->set_pid(v1::TARGET);
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
  ContainerSpecInput in = f.input();
  in.target_pid = 77;
  spec = container_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*namespace_of(*spec, "pid"))["path"], "/proc/77/ns/pid");

  in.cgroup_v2 = true;
  spec = container_spec(in);
  ASSERT_TRUE(spec.ok());
  ASSERT_NE(namespace_of(*spec, "cgroup"), nullptr);
}

TEST(PodSpec, ContainerCapabilities) {
  ContainerFixture f;
  auto* caps = f.security()->mutable_capabilities();
  caps->add_drop_capabilities("ALL");
  caps->add_add_capabilities("NET_ADMIN");
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  for (const char* set : {"bounding", "effective", "permitted"}) {
    EXPECT_EQ(strings((*spec)["process"]["capabilities"][set]), (Strings{"CAP_NET_ADMIN"})) << set;
  }
}

TEST(PodSpec, ContainerReadonlyRootfsAndNoNewPrivs) {
  ContainerFixture f;
  f.security()->set_readonly_rootfs(true);
  f.security()->set_no_new_privs(true);
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*spec)["root"]["readonly"], true);
  EXPECT_EQ((*spec)["process"]["noNewPrivileges"], true);
  // The sandbox files follow the rootfs; /dev/shm stays writable.
  EXPECT_EQ(strings((*mount_at(*spec, "/etc/hosts"))["options"]), (Strings{"rbind", "rprivate", "ro"}));
  EXPECT_EQ(strings((*mount_at(*spec, "/dev/shm"))["options"]), (Strings{"rbind", "rprivate", "rw"}));
}

TEST(PodSpec, ContainerSandboxFilesAndCgroupMount) {
  ContainerFixture f;
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*mount_at(*spec, "/etc/hostname"))["source"], f.dir.sub("hostname"));
  EXPECT_EQ((*mount_at(*spec, "/etc/hosts"))["source"], f.dir.sub("hosts"));
  EXPECT_EQ((*mount_at(*spec, "/etc/resolv.conf"))["source"], f.dir.sub("resolv.conf"));
  EXPECT_EQ((*mount_at(*spec, "/dev/shm"))["source"], f.dir.sub("shm"));
  EXPECT_EQ((*mount_at(*spec, "/dev/shm"))["type"], "bind");
  const json* cgroup = mount_at(*spec, "/sys/fs/cgroup");
  ASSERT_NE(cgroup, nullptr);
  EXPECT_TRUE(contains(strings((*cgroup)["options"]), "ro"));
  EXPECT_EQ(mount_at(*spec, "/run"), nullptr);
  EXPECT_FALSE((*spec)["process"].contains("rlimits"));

  // Host IPC: the host's /dev/shm.
  f.security()->mutable_namespace_options()->set_ipc(v1::NODE);
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*mount_at(*spec, "/dev/shm"))["source"], fs::canonical("/dev/shm").string());
}

TEST(PodSpec, ContainerCriMountsReplaceFilesAndAreResolved) {
  ContainerFixture f;
  const std::string real = f.dir.mkdir("real");
  fs::create_directory_symlink(real, f.dir.sub("link"));
  auto* hosts = f.config.add_mounts();
  hosts->set_container_path("/etc/hosts/");
  hosts->set_host_path(f.dir.sub("link"));
  hosts->set_readonly(true);
  auto* missing = f.config.add_mounts();
  missing->set_container_path("/data");
  missing->set_host_path(f.dir.sub("new/dir"));
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  int hosts_mounts = 0;
  for (const json& m : (*spec)["mounts"]) {
    if (m["destination"] == "/etc/hosts" || m["destination"] == "/etc/hosts/") ++hosts_mounts;
  }
  EXPECT_EQ(hosts_mounts, 1);
  const json* m = mount_at(*spec, "/etc/hosts/");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ((*m)["source"], real);
  EXPECT_EQ(strings((*m)["options"]), (Strings{"rbind", "rprivate", "ro"}));
  EXPECT_TRUE(fs::is_directory(f.dir.sub("new/dir")));
  EXPECT_EQ((*mount_at(*spec, "/data"))["source"], f.dir.sub("new/dir"));

  // Shallower destinations are mounted first.
  std::vector<size_t> depths;
  for (const json& mount : (*spec)["mounts"]) {
    if (mount["type"] != "bind") continue;
    const std::string d = mount["destination"];
    depths.push_back(std::count(d.begin(), d.end(), '/') - (d.size() > 1 && d.back() == '/' ? 1 : 0));
  }
  EXPECT_TRUE(std::is_sorted(depths.begin(), depths.end()));

  auto* relative = f.config.add_mounts();
  relative->set_container_path("relative");
  relative->set_host_path(real);
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, ContainerMountOverDevDropsDefaultDevMounts) {
  ContainerFixture f;
  auto* dev = f.config.add_mounts();
  dev->set_container_path("/dev");
  dev->set_host_path(f.dir.mkdir("dev"));
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(mount_at(*spec, "/dev/pts"), nullptr);
  EXPECT_EQ(mount_at(*spec, "/dev/mqueue"), nullptr);
  // The sandbox's shm is an extra mount, mounted after /dev.
  EXPECT_NE(mount_at(*spec, "/dev/shm"), nullptr);
}

TEST(PodSpec, ContainerMountPropagation) {
  struct Case {
    v1::MountPropagation propagation;
    std::string option;
    std::string rootfs;
  };
  for (const Case& c : std::vector<Case>{{v1::PROPAGATION_PRIVATE, "rprivate", ""},
                                         {v1::PROPAGATION_HOST_TO_CONTAINER, "rslave", "rslave"},
                                         {v1::PROPAGATION_BIDIRECTIONAL, "rshared", "rshared"}}) {
    ContainerFixture f;
    auto* m = f.config.add_mounts();
    m->set_container_path("/vol");
    m->set_host_path(f.dir.mkdir("vol"));
    m->set_propagation(c.propagation);
    ContainerSpecInput in = f.input();
    in.mount_propagation = [](const std::string&) -> errdefs::StatusOr<std::string> {
      return std::string("shared:7");
    };
    auto spec = container_spec(in);
    ASSERT_TRUE(spec.ok()) << spec.status().to_string();
    EXPECT_EQ(strings((*mount_at(*spec, "/vol"))["options"]), (Strings{"rbind", c.option, "rw"}));
    if (c.rootfs.empty()) {
      EXPECT_FALSE((*spec)["linux"].contains("rootfsPropagation"));
    } else {
      EXPECT_EQ((*spec)["linux"]["rootfsPropagation"], c.rootfs);
    }

    // A slave mount suffices for host-to-container only; a private one for neither.
    in.mount_propagation = [](const std::string&) -> errdefs::StatusOr<std::string> {
      return std::string("master:3");
    };
    EXPECT_EQ(container_spec(in).ok(), c.propagation != v1::PROPAGATION_BIDIRECTIONAL);
    in.mount_propagation = [](const std::string&) -> errdefs::StatusOr<std::string> { return std::string(); };
    EXPECT_EQ(container_spec(in).ok(), c.propagation == v1::PROPAGATION_PRIVATE);
  }
}

TEST(PodSpec, ContainerImageVolumes) {
  ContainerFixture f;
  const std::string vol = f.dir.mkdir("volumes/a");
  const std::string covered = f.dir.mkdir("volumes/b");
  auto* m = f.config.add_mounts();
  m->set_container_path("/covered");
  m->set_host_path(f.dir.mkdir("cri"));
  ContainerSpecInput in = f.input();
  in.image_volumes = {{"/var/lib/data", vol}, {"/covered", covered}};
  auto spec = container_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*mount_at(*spec, "/var/lib/data"))["source"], vol);
  EXPECT_EQ((*mount_at(*spec, "/covered"))["source"], f.dir.sub("cri"));
}

TEST(PodSpec, ContainerDevices) {
  ContainerFixture f;
  auto* d = f.config.add_devices();
  d->set_host_path("/dev/null");
  d->set_container_path("/dev/mynull");
  d->set_permissions("rw");
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const json& devices = (*spec)["linux"]["devices"];
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0]["path"], "/dev/mynull");
  EXPECT_EQ(devices[0]["type"], "c");
  EXPECT_EQ(devices[0]["major"], 1);
  EXPECT_EQ(devices[0]["minor"], 3);
  const json& rules = (*spec)["linux"]["resources"]["devices"];
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0]["allow"], false);
  EXPECT_EQ(rules[1], (json{{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rw"}}));

  d->set_host_path(f.dir.sub("hosts"));
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
  d->set_host_path(f.dir.sub("absent"));
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kNotFound);
}

TEST(PodSpec, ContainerPrivileged) {
  ContainerFixture f;
  f.security()->set_privileged(true);
  f.security()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  f.security()->add_masked_paths("/proc/kcore");
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);

  f.sandbox.mutable_linux()->mutable_security_context()->set_privileged(true);
  ContainerSpecInput in = f.input();
  in.cgroup_v2 = true;
  auto spec = container_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(strings((*spec)["process"]["capabilities"]["bounding"]), oci::current_capabilities());
  EXPECT_FALSE((*spec)["linux"].contains("maskedPaths"));
  EXPECT_FALSE((*spec)["linux"].contains("readonlyPaths"));
  EXPECT_FALSE((*spec)["linux"].contains("seccomp"));
  EXPECT_EQ(namespace_of(*spec, "cgroup"), nullptr);
  EXPECT_EQ((*spec)["linux"]["resources"]["devices"], json::array({{{"allow", true}, {"access", "rwm"}}}));
  EXPECT_FALSE((*spec)["linux"]["devices"].empty());
  EXPECT_TRUE(contains(strings((*mount_at(*spec, "/sys/fs/cgroup"))["options"]), "rw"));

  in.privileged_without_host_devices = true;
  spec = container_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE((*spec)["linux"].contains("devices"));
  EXPECT_EQ((*spec)["linux"]["resources"]["devices"], json::array({{{"allow", false}, {"access", "rwm"}}}));
}

TEST(PodSpec, ContainerMaskedAndReadonlyPaths) {
  ContainerFixture f;
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  // The request decides; without paths in it nothing is masked.
  EXPECT_FALSE((*spec)["linux"].contains("maskedPaths"));
  EXPECT_FALSE((*spec)["linux"].contains("readonlyPaths"));

  f.security()->add_masked_paths("/proc/kcore");
  f.security()->add_readonly_paths("/proc/sys");
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(strings((*spec)["linux"]["maskedPaths"]), (Strings{"/proc/kcore"}));
  EXPECT_EQ(strings((*spec)["linux"]["readonlyPaths"]), (Strings{"/proc/sys"}));

  ContainerSpecInput in = f.input();
  in.disable_proc_mount = true;
  spec = container_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(contains(strings((*spec)["linux"]["maskedPaths"]), "/proc/acpi"));
}

TEST(PodSpec, ContainerRunAsUsernameAndImageGroups) {
  ContainerFixture f;
  f.rootfs_files["/etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
  f.rootfs_files["/etc/group"] = "root:x:0:\napp:x:1001:app\nvideo:x:44:app,other\naudio:x:63:other\n";
  f.security()->set_run_as_username("app");
  f.security()->add_supplemental_groups(5000);
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const json& user = (*spec)["process"]["user"];
  EXPECT_EQ(user["uid"], 1000);
  EXPECT_EQ(user["gid"], 1001);
  EXPECT_EQ(user["additionalGids"], json::array({44, 1001, 5000}));

  // The image's USER names the member when the request sets no user.
  f.security()->clear_run_as_username();
  f.image.user = "app";
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 1000);
  EXPECT_EQ((*spec)["process"]["user"]["additionalGids"], json::array({44, 1001, 5000}));

  // A numeric uid without a passwd entry gets gid 0.
  f.security()->mutable_run_as_user()->set_value(4242);
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 4242);
  EXPECT_EQ((*spec)["process"]["user"]["gid"], 0);
  EXPECT_EQ((*spec)["process"]["user"]["additionalGids"], json::array({0, 5000}));

  f.security()->clear_run_as_user();
  f.security()->set_run_as_username("nobody-here");
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, ContainerUserWithoutPasswdFile) {
  ContainerFixture f;
  f.image.user = "1000:2000";
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ((*spec)["process"]["user"], (json{{"uid", 1000}, {"gid", 2000}, {"additionalGids", {2000}}}));
  f.image.user = "a:b:c";
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, ContainerResourcesAndOomScore) {
  ContainerFixture f;
  auto* r = f.config.mutable_linux()->mutable_resources();
  r->set_cpu_shares(256);
  r->set_cpu_quota(50000);
  r->set_cpu_period(100000);
  r->set_memory_limit_in_bytes(1 << 30);
  r->set_oom_score_adj(-900);
  f.sandbox.mutable_linux()->set_cgroup_parent("/kubepods/pod1");
  ContainerSpecInput in = f.input();
  in.swap_controller_available = true;
  auto spec = container_spec(in);
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const json& res = (*spec)["linux"]["resources"];
  EXPECT_EQ(res["cpu"]["shares"], 256);
  EXPECT_EQ(res["cpu"]["quota"], 50000);
  EXPECT_EQ(res["cpu"]["period"], 100000);
  EXPECT_EQ(res["memory"]["limit"], 1 << 30);
  EXPECT_EQ(res["memory"]["swap"], 1 << 30);
  EXPECT_EQ((*spec)["process"]["oomScoreAdj"], -900);
  EXPECT_EQ((*spec)["linux"]["cgroupsPath"], "/kubepods/pod1/c1");

  in.restrict_oom_score_adj = true;
  in.daemon_oom_score_adj = -500;
  spec = container_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["oomScoreAdj"], -500);

  f.config.mutable_linux()->clear_resources();
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE((*spec)["process"].contains("oomScoreAdj"));
}

TEST(PodSpec, SeccompDefaultProfile) {
  const json profile = default_seccomp_profile(oci::default_capabilities());
  EXPECT_EQ(profile["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(profile["defaultErrnoRet"], 1);
#if defined(__x86_64__)
  EXPECT_EQ(strings(profile["architectures"]),
            (Strings{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_TRUE(contains(allowed_syscalls(profile), "arch_prctl"));
#endif
  const Strings allowed = allowed_syscalls(profile);
  for (const char* name : {"read", "write", "execve", "futex", "chroot", "personality"}) {
    EXPECT_TRUE(contains(allowed, name)) << name;
  }
  EXPECT_FALSE(contains(allowed, "mount"));
  EXPECT_FALSE(contains(allowed, "reboot"));
  // clone only without namespace flags; clone3 fails with ENOSYS.
  bool clone_rule = false, clone3_enosys = false;
  for (const json& rule : profile["syscalls"]) {
    if (rule["names"] == json::array({"clone"})) {
      clone_rule = rule["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" && rule["args"][0]["value"] == 2114060288u;
    }
    if (rule["names"] == json::array({"clone3"})) clone3_enosys = rule["errnoRet"] == 38;
  }
  EXPECT_TRUE(clone_rule);
  EXPECT_TRUE(clone3_enosys);

  const json admin = default_seccomp_profile({"CAP_SYS_ADMIN", "CAP_SYS_BOOT"});
  const Strings admin_allowed = allowed_syscalls(admin);
  for (const char* name : {"mount", "unshare", "clone", "clone3", "reboot"}) {
    EXPECT_TRUE(contains(admin_allowed, name)) << name;
  }
  EXPECT_FALSE(contains(admin_allowed, "chroot"));
  for (const json& rule : admin["syscalls"]) EXPECT_NE(rule["action"], "SCMP_ACT_ERRNO");
}

TEST(PodSpec, ContainerSeccompFollowsCapabilities) {
  ContainerFixture f;
  f.security()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  f.security()->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_TRUE(contains(allowed_syscalls((*spec)["linux"]["seccomp"]), "mount"));

  f.security()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE((*spec)["linux"].contains("seccomp"));

  f.security()->clear_seccomp();
  f.security()->set_seccomp_profile_path("runtime/default");
  spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE((*spec)["linux"].contains("seccomp"));

  f.security()->set_seccomp_profile_path("bogus");
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);

  f.security()->clear_seccomp_profile_path();
  ContainerSpecInput in = f.input();
  in.unset_seccomp_profile = "runtime/default";
  spec = container_spec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE((*spec)["linux"].contains("seccomp"));
}

TEST(PodSpec, ContainerLocalhostSeccompProfile) {
  ContainerFixture f;
  const std::string path = f.dir.sub("profile.json");
  std::ofstream(path) << R"({
    "defaultAction": "SCMP_ACT_LOG",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64"}],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io", "args": []},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
    ]
  })";
  auto* seccomp = f.security()->mutable_seccomp();
  seccomp->set_profile_type(v1::SecurityProfile::Localhost);
  seccomp->set_localhost_ref(path);
  auto spec = container_spec(f.input());
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const json expected = {
      {"defaultAction", "SCMP_ACT_LOG"},
      {"syscalls",
       {{{"names", {"read", "write"}}, {"action", "SCMP_ACT_ALLOW"}},
        {{"names", {"personality"}},
         {"action", "SCMP_ACT_ALLOW"},
         {"args", {{{"index", 0}, {"value", 8}, {"valueTwo", 0}, {"op", "SCMP_CMP_EQ"}}}}}}},
  };
  EXPECT_EQ((*spec)["linux"]["seccomp"], expected);

  seccomp->set_localhost_ref(f.dir.sub("absent.json"));
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kNotFound);

  std::ofstream(path) << "{\"defaultAction\": 5}";
  seccomp->set_localhost_ref(path);
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);

  seccomp->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

TEST(PodSpec, ContainerApparmorRequestIsRefused) {
  ContainerFixture f;
  f.security()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Unconfined);
  EXPECT_TRUE(container_spec(f.input()).ok());
  f.security()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  EXPECT_EQ(container_spec(f.input()).status().code(), errdefs::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrd::cri
