#include "cri/cri_service.h"

#include "cri/stream_runtime.h"

#include <ftw.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <github.com/containerd/containerd/api/events/task.pb.h>

#include "cri/status_proto.h"
#include "events/exchange.h"
#include "log/log.h"
#include "os/dirs.h"
#include "services/containers/containers.h"
#include "version/version.h"

namespace ctrd::cri {
namespace {

// The CRI's own protocol version, which kubelets read as "the kube API
// version" (containerd answers the same).
constexpr std::string_view kKubeApiVersion = "0.1.0";
// The file UpdateRuntimeConfig writes, named as containerd names it.
constexpr std::string_view kTemplatedConfigName = "10-containerd-net.conflist";

std::vector<std::string> split_cidrs(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// nftw takes a plain function: the walk in progress on this thread adds up here.
thread_local FilesystemUsage* walking = nullptr;

int add_entry(const char*, const struct stat* st, int, FTW*) {
  walking->used_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  walking->inodes_used += 1;
  return 0;
}

}  // namespace

FilesystemUsage CriService::image_fs_usage() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::system_clock::now();
  const auto period = std::chrono::seconds(std::max(config_.stats_collect_period, 1));
  if (image_fs_ && now - image_fs_->measured_at < period) return *image_fs_;
  FilesystemUsage usage{
      .mountpoint = root_ + "/io.containerd.snapshotter.v1." + config_.containerd.snapshotter,
      .used_bytes = 0,
      .inodes_used = 0,
      .measured_at = now};
  walking = &usage;
  // FTW_PHYS: a symlink in a layer is counted, not followed; FTW_MOUNT: a
  // running container's rootfs mounted below is not the image's.
  (void)::nftw(usage.mountpoint.c_str(), add_entry, 64, FTW_PHYS | FTW_MOUNT);
  walking = nullptr;
  image_fs_ = usage;
  return usage;
}

CriService::~CriService() {
  {
    std::lock_guard lock(stream_server_mu_);
    if (stream_server_) stream_server_->stop();
  }
  if (events_ && oom_events_) events_->unsubscribe(oom_events_);
}

errdefs::StatusOr<std::string> CriService::exec_url(streaming::ExecRequest request) {
  CTRD_ASSIGN_OR_RETURN(streaming::Server * server, stream_server());
  return server->url_for(std::move(request));
}

errdefs::StatusOr<std::string> CriService::attach_url(streaming::AttachRequest request) {
  CTRD_ASSIGN_OR_RETURN(streaming::Server * server, stream_server());
  return server->url_for(std::move(request));
}

errdefs::StatusOr<std::string> CriService::port_forward_url(streaming::PortForwardRequest request) {
  CTRD_ASSIGN_OR_RETURN(streaming::Server * server, stream_server());
  return server->url_for(std::move(request));
}

void CriService::enable_workloads(Backend backend, std::shared_ptr<ctrd::events::Exchange> events) {
  backend.config = &config_;
  backend.images = images_.get();
  backend.puller = puller_.get();
  backend.networks = [this] { return load_networks(); };
  backend.snapshotter_root = root_ + "/io.containerd.snapshotter.v1." + config_.containerd.snapshotter;
  sandboxes_ = std::make_unique<SandboxService>(backend);
  auto records = backend.containers->list(std::string(kNamespace), {});
  containers_ = std::make_shared<ContainerService>(std::move(backend), *sandboxes_);
  containers_->set_event_sink([this](const std::string& id, ::runtime::v1::ContainerEventType type) {
    publish_container_event(id, type);
  });
  if (events) {
    auto subscribed =
        events->subscribe({"topic==\"/tasks/oom\",namespace==\"" + std::string(kNamespace) + "\""});
    if (subscribed.ok()) {
      events_ = std::move(events);
      oom_events_ = *subscribed;
      // Runs on the publisher's thread: only records the id.
      oom_events_->set_notify([subscription = std::weak_ptr<ctrd::events::Subscription>(oom_events_),
                               containers = std::weak_ptr<ContainerService>(containers_)] {
        auto s = subscription.lock();
        auto c = containers.lock();
        if (!s || !c) return;
        while (auto event = s->pop()) {
          containerd::events::TaskOOM oom;
          if (oom.ParseFromString(event->value)) c->record_oom(oom.container_id());
        }
      });
    } else {
      log::warn("cri: OOM kills will be reported as errors", {{"error", subscribed.status().message()}});
    }
  }
  // Before the gRPC server starts: no CRI call sees a half-recovered node.
  if (records.ok()) {
    sandboxes_->recover(*records);
    containers_->recover(*records);
  } else {
    log::warn("cri: cannot list the k8s.io containers to recover", {{"error", records.status().message()}});
  }
}

errdefs::StatusOr<streaming::Server*> CriService::stream_server() {
  std::lock_guard lock(stream_server_mu_);
  if (stream_server_) return stream_server_.get();
  if (containers_ == nullptr || sandboxes_ == nullptr)
    return errdefs::Unavailable("cri: pods and containers are not available");
  if (config_.enable_tls_streaming)
    return errdefs::NotImplemented("cri: enable_tls_streaming is not supported yet");
  CTRD_ASSIGN_OR_RETURN(
      stream_server_,
      streaming::Server::start(
          streaming::ServerOptions{.address = config_.stream_server_address,
                                   .port = config_.stream_server_port,
                                   .idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       config_.stream_idle_timeout.value),
                                   .max_connections = 128,
                                   .cache = {}},
          std::make_shared<StreamRuntime>(*containers_, *sandboxes_)));
  log::info("cri: the streaming server listens", {{"url", stream_server_->base_url()}});
  return stream_server_.get();
}

errdefs::Status CriService::stop_pod_sandbox(const std::string& id) {
  if (!sandboxes_) return errdefs::Unavailable("cri: pods need the container, snapshot and task services");
  CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, sandboxes_->store().get(id));
  CTRD_RETURN_IF_ERROR(containers_->stop_all(sandbox.metadata.id));
  return sandboxes_->stop(sandbox.metadata.id);
}

errdefs::Status CriService::remove_pod_sandbox(const std::string& id) {
  if (!sandboxes_) return errdefs::Unavailable("cri: pods need the container, snapshot and task services");
  auto sandbox = sandboxes_->store().get(id);
  if (sandbox.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
  CTRD_RETURN_IF_ERROR(sandbox.status());
  CTRD_RETURN_IF_ERROR(containers_->remove_all(sandbox->metadata.id));
  return sandboxes_->remove(sandbox->metadata.id);
}

void CriService::publish_container_event(const std::string& id, ::runtime::v1::ContainerEventType type) {
  ::runtime::v1::ContainerEventResponse event;
  event.set_container_id(id);
  event.set_container_event_type(type);
  event.set_created_at(unix_nanos(std::chrono::system_clock::now()));
  std::string sandbox_id;
  if (auto container = containers_->store().get(id); container.ok())
    sandbox_id = container->metadata.sandbox_id;
  for (const auto& container : containers_->store().list()) {
    if (!sandbox_id.empty() && container.metadata.sandbox_id == sandbox_id)
      to_proto(container, event.add_containers_statuses());
  }
  if (!sandbox_id.empty()) {
    if (auto sandbox = sandboxes_->store().get(sandbox_id); sandbox.ok())
      to_proto(*sandbox, event.mutable_pod_sandbox_status());
  }
  container_events_.publish(event);
}

::runtime::v1::PodSandboxStats CriService::pod_sandbox_stats(const Sandbox& sandbox) {
  ::runtime::v1::PodSandboxStats out;
  const auto& config = sandbox.metadata.config;
  auto* attributes = out.mutable_attributes();
  attributes->set_id(sandbox.metadata.id);
  *attributes->mutable_metadata() = config.metadata();
  *attributes->mutable_labels() = config.labels();
  *attributes->mutable_annotations() = config.annotations();
  auto* linux = out.mutable_linux();
  const auto now = std::chrono::system_clock::now();
  const int64_t timestamp =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  CgroupUsage total;
  if (sandbox.state == SandboxState::kReady) {
    if (auto own = containers_->task_usage(sandbox.metadata.id)) total = *own;
  }
  for (const auto& container : containers_->store().list()) {
    if (container.metadata.sandbox_id != sandbox.metadata.id) continue;
    auto* stats = linux->add_containers();
    *stats = containers_->stats(container);
    total.cpu_nanos += stats->cpu().usage_core_nano_seconds().value();
    total.working_set += stats->memory().working_set_bytes().value();
    total.memory_usage += stats->memory().usage_bytes().value();
    total.rss += stats->memory().rss_bytes().value();
    total.page_faults += stats->memory().page_faults().value();
    total.major_page_faults += stats->memory().major_page_faults().value();
  }
  linux->mutable_cpu()->set_timestamp(timestamp);
  linux->mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(total.cpu_nanos);
  linux->mutable_cpu()->mutable_usage_nano_cores()->set_value(
      pod_cpu_rates_.sample(sandbox.metadata.id, now, total.cpu_nanos));
  auto* memory = linux->mutable_memory();
  memory->set_timestamp(timestamp);
  memory->mutable_working_set_bytes()->set_value(total.working_set);
  memory->mutable_usage_bytes()->set_value(total.memory_usage);
  memory->mutable_rss_bytes()->set_value(total.rss);
  memory->mutable_page_faults()->set_value(total.page_faults);
  memory->mutable_major_page_faults()->set_value(total.major_page_faults);
  if (sandbox.state == SandboxState::kReady && sandbox.pid != 0 && !sandbox.metadata.netns_path.empty()) {
    if (auto interfaces = network_usage(sandbox.pid); interfaces.ok()) {
      auto* network = linux->mutable_network();
      network->set_timestamp(timestamp);
      for (const auto& i : *interfaces) {
        auto* usage = network->add_interfaces();
        usage->set_name(i.name);
        usage->mutable_rx_bytes()->set_value(i.rx_bytes);
        usage->mutable_rx_errors()->set_value(i.rx_errors);
        usage->mutable_tx_bytes()->set_value(i.tx_bytes);
        usage->mutable_tx_errors()->set_value(i.tx_errors);
        if (i.name == "eth0") *network->mutable_default_interface() = *usage;
      }
    }
  }
  return out;
}

RuntimeVersion CriService::version() const {
  return RuntimeVersion{.version = std::string(kKubeApiVersion),
                        .runtime_name = "ctrd",
                        .runtime_version = std::string(ctrd::version::kVersion),
                        .runtime_api_version = "v1"};
}

errdefs::StatusOr<std::vector<NetworkConfig>> CriService::load_networks() {
  auto loaded = load_network_configs(config_.cni.conf_dir, config_.cni.max_conf_num);
  std::lock_guard lock(mu_);
  if (loaded.ok()) {
    networks_ = *loaded;
  } else {
    networks_.clear();
  }
  return loaded;
}

RuntimeStatus CriService::status(bool verbose) {
  RuntimeStatus out;
  out.conditions.push_back(Condition{.type = "RuntimeReady", .status = true, .reason = "", .message = ""});
  auto networks = load_networks();
  if (networks.ok()) {
    out.conditions.push_back(Condition{.type = "NetworkReady", .status = true, .reason = "", .message = ""});
  } else {
    out.conditions.push_back(
        Condition{.type = "NetworkReady",
                  .status = false,
                  .reason = "NetworkPluginNotReady",
                  .message = "Network plugin returns error: " + networks.status().message()});
  }
  if (verbose) {
    nlohmann::json cni{{"pluginDirs", nlohmann::json::array({config_.cni.bin_dir})},
                       {"networks", nlohmann::json::array()}};
    if (networks.ok()) {
      for (const auto& n : *networks)
        cni["networks"].push_back(
            {{"name", n.name}, {"file", n.file}, {"config", nlohmann::json::parse(n.conflist)}});
    }
    out.info["cniconfig"] = cni.dump();
    nlohmann::json config{{"sandboxImage", config_.sandbox_image},
                          {"snapshotter", config_.containerd.snapshotter},
                          {"defaultRuntimeName", config_.containerd.default_runtime_name},
                          {"streamServerAddress", config_.stream_server_address},
                          {"streamServerPort", config_.stream_server_port},
                          {"restrictOOMScoreAdj", config_.restrict_oom_score_adj},
                          {"netnsMountsUnderStateDir", config_.netns_mounts_under_state_dir},
                          {"maxContainerLogSize", config_.max_container_log_line_size},
                          {"cni", {{"binDir", config_.cni.bin_dir}, {"confDir", config_.cni.conf_dir}}}};
    std::lock_guard lock(mu_);
    if (!pod_cidr_.empty()) config["podCIDR"] = pod_cidr_;
    out.info["config"] = config.dump();
  }
  return out;
}

errdefs::Status CriService::update_runtime_config(const std::string& pod_cidr) {
  const std::vector<std::string> cidrs = split_cidrs(pod_cidr);
  {
    std::lock_guard lock(mu_);
    pod_cidr_ = pod_cidr;
  }
  if (cidrs.empty() || config_.cni.conf_template.empty()) return errdefs::Status::Ok();
  if (load_networks().ok()) {
    log::info("network is ready: not generating a CNI config from the template",
              {{"conf_dir", config_.cni.conf_dir}});
    return errdefs::Status::Ok();
  }
  std::ifstream in(config_.cni.conf_template);
  if (!in) return errdefs::NotFound("cni template " + config_.cni.conf_template + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  CTRD_ASSIGN_OR_RETURN(std::string rendered, render_cni_template(text.str(), template_data_for(cidrs)));
  CTRD_RETURN_IF_ERROR(os::ensure_dir(config_.cni.conf_dir, 0755));
  const std::string path = config_.cni.conf_dir + "/" + std::string(kTemplatedConfigName);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << rendered;
    if (!out) return errdefs::Internal("cannot write " + temp);
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return errdefs::Internal("cannot write " + path + ": " + ec.message());
  log::info("generated CNI config from the template", {{"path", path}, {"pod_cidr", pod_cidr}});
  return errdefs::Status::Ok();
}

}  // namespace ctrd::cri
