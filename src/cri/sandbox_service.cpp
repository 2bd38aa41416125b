#include "cri/sandbox_service.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cni/cni.h"
#include "cri/cri_service.h"
#include "cri/image_pull.h"
#include "cri/validate.h"
#include "log/log.h"
#include "oci/spec.h"
#include "os/dirs.h"
#include "os/netns.h"
#include "services/containers/containers.h"
#include "services/snapshots/snapshots.h"
#include "services/tasks/tasks.h"
#include "unpack/unpack.h"

namespace ctrd::cri {
namespace {

namespace v1 = ::runtime::v1;
using nlohmann::json;

// How long a killed pause process may take to be reported gone.
constexpr std::chrono::seconds kExitTimeout{30};
// The loopback network every pod gets before its own, as libcni's users add it.
constexpr std::string_view kLoopbackNetwork =
    R"({"cniVersion":"0.3.1","name":"cni-loopback","plugins":[{"type":"loopback"}]})";
constexpr std::string_view kLoopbackName = "cni-loopback";

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

errdefs::Status write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return errdefs::Internal("cannot write " + path);
  std::filesystem::permissions(path, std::filesystem::perms(0644));
  return errdefs::Status::Ok();
}

std::string read_host_file(const std::string& path, std::string fallback) {
  std::ifstream in(path);
  if (!in) return fallback;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// resolv.conf from the pod's DNSConfig, in the order the resolver reads it.
std::string resolv_conf(const v1::DNSConfig& dns) {
  std::string out;
  if (!dns.searches().empty()) {
    out += "search";
    for (const auto& s : dns.searches()) out += " " + s;
    out += "\n";
  }
  for (const auto& server : dns.servers()) out += "nameserver " + server + "\n";
  if (!dns.options().empty()) {
    out += "options";
    for (const auto& o : dns.options()) out += " " + o;
    out += "\n";
  }
  return out;
}

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

cni::Attachment attachment_for(const SandboxMetadata& metadata, const std::string& ifname) {
  const auto& pod = metadata.config.metadata();
  cni::Attachment a{.container_id = metadata.id,
                    .netns = metadata.netns_path,
                    .ifname = ifname,
                    .args = {{"IgnoreUnknown", "1"},
                             {"K8S_POD_NAMESPACE", pod.namespace_()},
                             {"K8S_POD_NAME", pod.name()},
                             {"K8S_POD_INFRA_CONTAINER_ID", metadata.id},
                             {"K8S_POD_UID", pod.uid()}},
                    .capability_args = {}};
  json ports = json::array();
  for (const auto& p : metadata.config.port_mappings()) {
    if (p.host_port() <= 0) continue;
    ports.push_back({{"hostPort", p.host_port()},
                     {"containerPort", p.container_port()},
                     {"protocol", to_lower(v1::Protocol_Name(p.protocol()))},
                     {"hostIP", p.host_ip()}});
  }
  if (!ports.empty()) a.capability_args["portMappings"] = ports.dump();
  if (metadata.config.has_dns_config()) {
    const auto& dns = metadata.config.dns_config();
    a.capability_args["dns"] =
        json{{"servers", std::vector<std::string>(dns.servers().begin(), dns.servers().end())},
             {"searches", std::vector<std::string>(dns.searches().begin(), dns.searches().end())},
             {"options", std::vector<std::string>(dns.options().begin(), dns.options().end())}}
            .dump();
  }
  return a;
}

bool host_network(const v1::PodSandboxConfig& config) {
  return config.linux().security_context().namespace_options().network() == v1::NODE;
}
bool host_ipc(const v1::PodSandboxConfig& config) {
  return config.linux().security_context().namespace_options().ipc() == v1::NODE;
}

}  // namespace

SandboxService::SandboxService(Backend backend)
    : backend_(std::move(backend)), store_(std::make_shared<SandboxStore>()) {}

SandboxFiles SandboxService::files(const Sandbox& sandbox) const {
  const std::string dir = backend_.root + "/sandboxes/" + sandbox.metadata.id;
  SandboxFiles files{
      .hostname = dir + "/hostname", .hosts = dir + "/hosts", .resolv_conf = dir + "/resolv.conf", .shm = ""};
  if (!host_ipc(sandbox.metadata.config))
    files.shm = backend_.state + "/sandboxes/" + sandbox.metadata.id + "/shm";
  return files;
}

errdefs::StatusOr<SandboxFiles> SandboxService::write_files(const std::string& id,
                                                            const v1::PodSandboxConfig& config) {
  Sandbox probe;
  probe.metadata.id = id;
  probe.metadata.config = config;
  SandboxFiles files = this->files(probe);
  CTRD_RETURN_IF_ERROR(os::ensure_dir(backend_.root + "/sandboxes/" + id, 0755));
  const std::string hostname = config.hostname().empty() ? host_name() : config.hostname();
  CTRD_RETURN_IF_ERROR(write_file(files.hostname, hostname + "\n"));
  CTRD_RETURN_IF_ERROR(write_file(files.hosts, read_host_file("/etc/hosts", "127.0.0.1\tlocalhost\n")));
  CTRD_RETURN_IF_ERROR(write_file(files.resolv_conf, config.has_dns_config()
                                                         ? resolv_conf(config.dns_config())
                                                         : read_host_file("/etc/resolv.conf", "")));
  if (!files.shm.empty()) {
    CTRD_RETURN_IF_ERROR(os::ensure_dir(files.shm, 0700));
    if (::mount("shm", files.shm.c_str(), "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV,
                "mode=1777,size=65536k") != 0)
      return errdefs::Internal("cannot mount the sandbox's /dev/shm at " + files.shm + ": " +
                               std::strerror(errno));
  }
  return files;
}

void SandboxService::remove_files(const std::string& id) {
  const std::string state_dir = backend_.state + "/sandboxes/" + id;
  const std::string shm = state_dir + "/shm";
  if (::umount2(shm.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    log::warn("cannot unmount a sandbox's /dev/shm", {{"path", shm}, {"error", std::strerror(errno)}});
  std::error_code ec;
  std::filesystem::remove_all(state_dir, ec);
  std::filesystem::remove_all(backend_.root + "/sandboxes/" + id, ec);
}

errdefs::Status SandboxService::setup_network(SandboxMetadata& metadata) {
  CTRD_ASSIGN_OR_RETURN(auto networks, backend_.networks());
  const cni::Options options{.bin_dirs = {backend_.config->cni.bin_dir}};
  json results = json::object();
  Undo undo;
  CTRD_ASSIGN_OR_RETURN(cni::Result lo,
                        cni::add(std::string(kLoopbackNetwork), attachment_for(metadata, "lo"), options));
  results[std::string(kLoopbackName)] = lo.json;
  undo.add([&, a = attachment_for(metadata, "lo"), previous = lo.json] {
    (void)cni::del(std::string(kLoopbackNetwork), a, previous, options);
  });
  std::vector<std::string> addresses;
  for (size_t i = 0; i < networks.size(); ++i) {
    const std::string ifname = "eth" + std::to_string(i);
    auto attachment = attachment_for(metadata, ifname);
    auto result = cni::add(networks[i].conflist, attachment, options);
    if (!result.ok())
      return errdefs::Status(result.status().code(), "failed to set up the pod network of sandbox " +
                                                         errdefs::quoted(metadata.id) + ": " +
                                                         result.status().message());
    results[networks[i].name] = result->json;
    undo.add([&, conflist = networks[i].conflist, attachment, previous = result->json] {
      (void)cni::del(conflist, attachment, previous, options);
    });
    if (i == 0) addresses = result->addresses_of(ifname);
  }
  // The first IPv4 address is the pod's IP, as the kubelet expects by default.
  auto v4 = std::find_if(addresses.begin(), addresses.end(),
                         [](const std::string& a) { return a.find(':') == std::string::npos; });
  if (v4 != addresses.end()) std::rotate(addresses.begin(), v4, v4 + 1);
  if (!addresses.empty()) {
    metadata.ip = addresses.front();
    metadata.additional_ips.assign(addresses.begin() + 1, addresses.end());
  }
  metadata.cni_result = results.dump();
  undo.dismiss();
  return errdefs::Status::Ok();
}

errdefs::Status SandboxService::teardown_network(const SandboxMetadata& metadata) {
  if (metadata.netns_path.empty()) return errdefs::Status::Ok();
  const os::NetNs netns = os::NetNs::at(metadata.netns_path);
  if (netns.bound()) {
    json previous = json::parse(metadata.cni_result, nullptr, /*allow_exceptions=*/false);
    auto result_of = [&](const std::string& name) -> std::string {
      if (!previous.is_object() || !previous.contains(name)) return "";
      return previous[name].get<std::string>();
    };
    const cni::Options options{.bin_dirs = {backend_.config->cni.bin_dir}};
    auto networks = backend_.networks();
    if (networks.ok()) {
      for (size_t i = networks->size(); i-- > 0;) {
        const auto& network = (*networks)[i];
        CTRD_RETURN_IF_ERROR(cni::del(network.conflist, attachment_for(metadata, "eth" + std::to_string(i)),
                                      result_of(network.name), options));
      }
    }
    CTRD_RETURN_IF_ERROR(cni::del(std::string(kLoopbackNetwork), attachment_for(metadata, "lo"),
                                  result_of(std::string(kLoopbackName)), options));
  }
  return netns.remove();
}

errdefs::StatusOr<CriImage> SandboxService::sandbox_image() {
  const std::string& ref = backend_.config->sandbox_image;
  if (backend_.images == nullptr) return errdefs::Unavailable("cri: the image service is not available");
  auto image = backend_.images->get(ref);
  if (image.ok() || image.status().code() != errdefs::Code::kNotFound || backend_.puller == nullptr)
    return image;
  log::info("pulling the sandbox image", {{"image", ref}});
  auto pulled = backend_.puller->pull(ref, PullAuth{});
  if (!pulled.ok())
    return errdefs::Status(pulled.status().code(), "failed to get sandbox image " + errdefs::quoted(ref) +
                                                       ": " + pulled.status().message());
  return backend_.images->get(*pulled);
}

errdefs::StatusOr<std::string> SandboxService::run(const v1::PodSandboxConfig& config,
                                                   const std::string& runtime_handler) {
  const auto& pod = config.metadata();
  CTRD_RETURN_IF_ERROR(validate_pod_config(config));
  CTRD_ASSIGN_OR_RETURN(const Runtime* runtime, runtime_for(*backend_.config, runtime_handler));
  const std::string id = random_hex(32);
  const std::string name = sandbox_name(pod);
  if (auto reserved = names_.reserve(name, id); !reserved.ok())
    return errdefs::AlreadyExists("failed to reserve sandbox name " + errdefs::quoted(name) + ": " +
                                  reserved.message());
  Undo undo;
  undo.add([&] { names_.release(name); });

  std::optional<CriImage> image;
  if (!backend_.config->sandbox_image.empty()) {
    CTRD_ASSIGN_OR_RETURN(image, sandbox_image());
  }

  SandboxMetadata metadata{.id = id,
                           .name = name,
                           .config = config,
                           .netns_path = "",
                           .ip = "",
                           .additional_ips = {},
                           .runtime_handler = runtime_handler,
                           .cni_result = ""};
  const std::string ns(kNamespace);
  // What a daemon killed half way through leaves is found by this file
  // (cleanup_orphans): written before the namespace exists, again once the
  // network is up.
  undo.add([this, id] { remove_files(id); });
  CTRD_RETURN_IF_ERROR(os::ensure_dir(backend_.state + "/sandboxes/" + id, 0700));
  if (!host_network(config)) {
    const std::string netns_dir =
        backend_.config->netns_mounts_under_state_dir ? backend_.state + "/netns" : "/var/run/netns";
    metadata.netns_path = netns_dir + "/cni-" + random_hex(16);
    CTRD_RETURN_IF_ERROR(write_pending(metadata));
    CTRD_ASSIGN_OR_RETURN(auto netns, os::NetNs::create(metadata.netns_path));
    undo.add([netns] { (void)netns.remove(); });
    undo.add([this, metadata] { (void)teardown_network(metadata); });
  }
  // The CNI plugins configure the namespace while the sandbox's shim and
  // runtime start in it: neither needs the other, and the pod's network is
  // up before the call returns. Joined before `undo` runs (declared after it).
  SandboxMetadata networked = metadata;
  errdefs::Status network_status = errdefs::Status::Ok();
  std::jthread network;
  if (!metadata.netns_path.empty()) {
    network = std::jthread([this, &networked, &network_status] {
      try {
        network_status = setup_network(networked);
      } catch (const std::exception& e) {
        network_status = errdefs::Internal(std::string("pod network setup failed: ") + e.what());
      }
    });
  }

  CTRD_ASSIGN_OR_RETURN(SandboxFiles files, write_files(id, config));

  SandboxSpecInput input;
  input.id = id;
  input.config = &config;
  input.image = image ? &image->config : nullptr;
  input.pause_args = {"/pause"};
  input.netns_path = metadata.netns_path;
  input.files = files;
  input.systemd_cgroup = runtime->options.systemd_cgroup;
  input.restrict_oom_score_adj = backend_.config->restrict_oom_score_adj;
  input.daemon_oom_score_adj = daemon_oom_score_adj();
  input.pod_annotation_patterns = runtime->pod_annotations;
  input.runtime_handler = runtime_handler;
  input.unset_seccomp_profile = backend_.config->unset_seccomp_profile;
  input.enable_unprivileged_ports = backend_.config->enable_unprivileged_ports;
  input.enable_unprivileged_icmp = backend_.config->enable_unprivileged_icmp;
  CTRD_ASSIGN_OR_RETURN(json spec, sandbox_spec(input));
  if (!image) {
    CTRD_RETURN_IF_ERROR(oci::add_mount(spec, {.destination = "/pause",
                                               .type = "bind",
                                               .source = backend_.pause_binary,
                                               .options = {"rbind", "ro"}}));
  }

  metadata::Container record;
  record.id = id;
  for (const auto& [k, v] : config.labels()) record.labels[k] = v;
  record.labels["io.cri-containerd.kind"] = "sandbox";
  record.runtime = {.name = runtime->runtime_type, .options = runc_options(*runtime)};
  record.spec = spec_value(spec);
  CTRD_ASSIGN_OR_RETURN(std::string encoded, encode_metadata(metadata));
  record.extensions[std::string(kSandboxMetadataExtension)] = metadata::AnyValue{
      .type_url = "github.com/containerd/cri/pkg/store/sandbox/Metadata", .value = encoded};
  std::vector<mount::Mount> rootfs;
  services::snapshots::Scope scope{
      .ns = ns, .lease = "", .snapshotter = backend_.config->containerd.snapshotter};
  if (image) {
    record.image = image->repo_tags.empty() ? image->id : image->repo_tags.front();
    record.snapshotter = scope.snapshotter;
    record.snapshot_key = id;
    CTRD_ASSIGN_OR_RETURN(auto lease, TemporaryLease::create(backend_.db, "cri-sandbox-"));
    scope.lease = lease.id();
    CTRD_ASSIGN_OR_RETURN(
        rootfs, backend_.snapshots->prepare(scope, id, unpack::chain_id(image->config.diff_ids), {}));
    scope.lease.clear();
    undo.add([this, scope, id] { (void)backend_.snapshots->remove(scope, id); });
    CTRD_RETURN_IF_ERROR(backend_.containers->create(ns, record).status());
  } else {
    CTRD_RETURN_IF_ERROR(backend_.containers->create(ns, record).status());
  }
  undo.add([this, ns, id] { (void)backend_.containers->remove(ns, id); });

  services::tasks::CreateRequest request;
  request.container_id = id;
  request.rootfs = rootfs;
  CTRD_ASSIGN_OR_RETURN(auto task, backend_.tasks->create(ns, request));
  undo.add([this, ns, id, task] {
    (void)task->kill("", SIGKILL, true);
    (void)backend_.tasks->remove(ns, id);
  });
  auto exited = std::make_shared<ExitLatch>();
  watch(task, id, exited);
  CTRD_ASSIGN_OR_RETURN(uint32_t pid, task->start(""));
  if (network.joinable()) {
    network.join();
    CTRD_RETURN_IF_ERROR(network_status);
    metadata = networked;
    CTRD_RETURN_IF_ERROR(write_pending(metadata));
    CTRD_ASSIGN_OR_RETURN(encoded, encode_metadata(metadata));
    record.extensions[std::string(kSandboxMetadataExtension)].value = encoded;
    // Straight to the store: containerd publishes no /containers/update here.
    CTRD_RETURN_IF_ERROR(backend_.db->containers(ns)
                             .update(record, {"extensions." + std::string(kSandboxMetadataExtension)})
                             .status());
  }
  CTRD_RETURN_IF_ERROR(
      store_->add(Sandbox{.metadata = metadata,
                          .state = exited->get() ? SandboxState::kNotReady : SandboxState::kReady,
                          .pid = pid,
                          .created_at = std::chrono::system_clock::now(),
                          .exited = exited}));
  undo.dismiss();
  return id;
}

void SandboxService::watch(const std::shared_ptr<runtime::Task>& task, const std::string& id,
                           const std::shared_ptr<ExitLatch>& exited) {
  task->wait("", [exited, store = std::weak_ptr<SandboxStore>(store_),
                  id](errdefs::StatusOr<runtime::Exit> exit) {
    exited->set(exit.ok() ? *exit
                          : runtime::Exit{.pid = 0, .status = 255, .at = std::chrono::system_clock::now()});
    if (auto s = store.lock()) (void)s->update(id, SandboxState::kNotReady, 0);
  });
}

errdefs::Status SandboxService::write_pending(const SandboxMetadata& metadata) {
  CTRD_ASSIGN_OR_RETURN(std::string encoded, encode_metadata(metadata));
  return write_file(backend_.state + "/sandboxes/" + metadata.id + "/metadata.json", encoded);
}

void SandboxService::cleanup_orphans() {
  std::set<std::string> seen;
  for (const std::string& parent : {backend_.state + "/sandboxes", backend_.root + "/sandboxes"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      const std::string id = entry.path().filename().string();
      if (!seen.insert(id).second) continue;
      if (auto known = store_->get(id); known.ok() && known->metadata.id == id) continue;
      // A RunPodSandbox the daemon did not finish: its network, namespace and files go.
      std::ifstream in(backend_.state + "/sandboxes/" + id + "/metadata.json");
      std::stringstream text;
      text << in.rdbuf();
      if (auto metadata = decode_metadata(text.str()); metadata.ok()) {
        if (auto down = teardown_network(*metadata); !down.ok())
          log::warn("cri: cannot tear down an unfinished sandbox's network",
                    {{"id", id}, {"error", down.message()}});
      }
      remove_files(id);
      log::info("cri: removed what an unfinished RunPodSandbox left", {{"id", id}});
    }
  }
}

void SandboxService::recover(const std::vector<metadata::Container>& records) {
  const std::string ns(kNamespace);
  std::vector<std::string> unfinished;
  for (const auto& record : records) {
    auto kind = record.labels.find("io.cri-containerd.kind");
    if (kind == record.labels.end() || kind->second != "sandbox") continue;
    auto extension = record.extensions.find(std::string(kSandboxMetadataExtension));
    if (extension == record.extensions.end()) continue;
    auto metadata = decode_metadata(extension->second.value);
    if (!metadata.ok()) {
      log::warn("cri: skipping a sandbox whose metadata does not load",
                {{"id", record.id}, {"error", metadata.status().message()}});
      continue;
    }
    Sandbox sandbox{.metadata = *metadata,
                    .state = SandboxState::kNotReady,
                    .pid = 0,
                    .created_at = record.created_at,
                    .exited = std::make_shared<ExitLatch>()};
    std::shared_ptr<runtime::Task> running;
    if (auto task = backend_.tasks->task(ns, record.id); task.ok()) {
      auto state = backend_.tasks->state(**task, "");
      if (state.ok() && state->status == runtime::Status::kRunning) {
        running = *task;
        sandbox.state = SandboxState::kReady;
        sandbox.pid = state->pid;
      }
    }
    if (!running)
      sandbox.exited->set(runtime::Exit{.pid = 0, .status = 255, .at = std::chrono::system_clock::now()});
    (void)names_.reserve(sandbox.metadata.name, sandbox.metadata.id);
    // The record and task come before the network is up (run): without a
    // CNI result the RunPodSandbox was cut short.
    if (!metadata->netns_path.empty() && metadata->cni_result.empty()) unfinished.push_back(record.id);
    const auto exited = sandbox.exited;
    if (!store_->add(std::move(sandbox)).ok()) continue;
    if (running) watch(running, record.id, exited);
  }
  for (const auto& id : unfinished) {
    auto removed = remove(id);
    log::info("cri: removed a sandbox whose RunPodSandbox did not finish",
              {{"id", id}, {"error", removed.ok() ? "" : removed.message()}});
  }
  cleanup_orphans();
}

errdefs::Status SandboxService::stop(const std::string& id_or_prefix) {
  CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, store_->get(id_or_prefix));
  const std::string& id = sandbox.metadata.id;
  const std::string ns(kNamespace);
  auto task = backend_.tasks->task(ns, id);
  if (task.ok()) {
    if (!sandbox.exited || !sandbox.exited->get()) {
      auto killed = (*task)->kill("", SIGKILL, true);
      if (!killed.ok() && killed.code() != errdefs::Code::kNotFound) return killed;
      if (sandbox.exited && !sandbox.exited->wait_for(kExitTimeout))
        return errdefs::DeadlineExceeded("the pause process of sandbox " + errdefs::quoted(id) +
                                         " did not exit after SIGKILL");
    }
    auto removed = backend_.tasks->remove(ns, id);
    if (!removed.ok() && removed.status().code() != errdefs::Code::kNotFound) return removed.status();
  } else if (task.status().code() != errdefs::Code::kNotFound) {
    return task.status();
  }
  (void)store_->update(id, SandboxState::kNotReady, 0);
  if (auto down = teardown_network(sandbox.metadata); !down.ok())
    return errdefs::Status(down.code(), "failed to tear down the pod network of sandbox " +
                                            errdefs::quoted(id) + ": " + down.message());
  const std::string shm = backend_.state + "/sandboxes/" + id + "/shm";
  if (::umount2(shm.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return errdefs::Internal("cannot unmount " + shm + ": " + std::strerror(errno));
  return errdefs::Status::Ok();
}

errdefs::Status SandboxService::remove(const std::string& id_or_prefix) {
  auto sandbox = store_->get(id_or_prefix);
  if (sandbox.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
  CTRD_RETURN_IF_ERROR(sandbox.status());
  const std::string id = sandbox->metadata.id;
  CTRD_RETURN_IF_ERROR(stop(id));
  const std::string ns(kNamespace);
  auto record = backend_.containers->get(ns, id);
  if (record.ok()) {
    if (!record->snapshot_key.empty()) {
      auto removed = backend_.snapshots->remove({.ns = ns, .lease = "", .snapshotter = record->snapshotter},
                                                record->snapshot_key);
      if (!removed.ok() && removed.code() != errdefs::Code::kNotFound) return removed;
    }
    auto removed = backend_.containers->remove(ns, id);
    if (!removed.ok() && removed.code() != errdefs::Code::kNotFound) return removed;
  } else if (record.status().code() != errdefs::Code::kNotFound) {
    return record.status();
  }
  remove_files(id);
  names_.release(sandbox->metadata.name);
  store_->remove(id);
  return errdefs::Status::Ok();
}

}  // namespace ctrd::cri
