#include "cri/container_service.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cri/cri_service.h"
#include "cri/log_writer.h"
#include "cri/pod_spec.h"
#include "cri/validate.h"
#include "executor/worker_pool.h"
#include "log/log.h"
#include "mount/mount.h"
#include "os/dirs.h"
#include "services/containers/containers.h"
#include "services/snapshots/snapshots.h"
#include "services/tasks/tasks.h"
#include "unpack/unpack.h"

namespace ctrd::cri {
namespace {

namespace v1 = ::runtime::v1;
using nlohmann::json;
using Clock = std::chrono::system_clock;

// How long a process killed with SIGKILL may take to be reported gone.
constexpr std::chrono::seconds kKillTimeout{30};
// How long the output of an exited process may take to drain.
constexpr std::chrono::seconds kDrainTimeout{5};

const std::map<std::string, int, std::less<>>& signal_names() {
  static const std::map<std::string, int, std::less<>> names{
      {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},    {"SIGQUIT", SIGQUIT}, {"SIGKILL", SIGKILL},
      {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},  {"SIGTERM", SIGTERM}, {"SIGSTOP", SIGSTOP},
      {"SIGPWR", SIGPWR},   {"SIGWINCH", SIGWINCH}};
  return names;
}

// The image's stop signal ("SIGQUIT", "QUIT" or "3"); SIGTERM when unset or unknown.
int stop_signal(const std::string& name) {
  if (name.empty()) return SIGTERM;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) return std::atoi(name.c_str());
  const std::string full = name.starts_with("SIG") ? name : "SIG" + name;
  auto it = signal_names().find(full);
  return it == signal_names().end() ? SIGTERM : it->second;
}

// A file of the image's root as the snapshot's mounts show it, read without
// mounting: overlay's upper then lower directories, or a bind's source.
errdefs::StatusOr<std::string> read_rootfs_file(const std::vector<mount::Mount>& mounts,
                                                const std::string& path) {
  std::vector<std::string> dirs;
  for (const auto& m : mounts) {
    if (m.type == "overlay") {
      if (std::string upper = mount::option_value(m, "upperdir"); !upper.empty()) dirs.push_back(upper);
      for (const auto& lower : mount::overlay_lowerdirs(m)) dirs.push_back(lower);
    } else if (m.type == "bind" || m.type == "rbind") {
      dirs.push_back(m.source);
    }
  }
  for (const auto& dir : dirs) {
    std::ifstream in(dir + path);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return errdefs::NotFound(path + " is not in the container's root");
}

errdefs::StatusOr<os::UniqueFd> make_fifo(const std::string& path) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST)
    return errdefs::Internal("cannot make fifo " + path + ": " + std::strerror(errno));
  // Non-blocking, so opening does not wait for the shim; reads wait in poll.
  os::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return errdefs::Internal("cannot open fifo " + path + ": " + std::strerror(errno));
  return fd;
}

// cgroup v1's memory.memsw files exist only with swap accounting.
bool swap_controller_available() {
  return std::filesystem::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
}

std::string exit_reason(const runtime::Exit& exit, bool oom) {
  if (oom) return "OOMKilled";
  return exit.status == 0 ? "Completed" : "Error";
}

}  // namespace

// A started container's output, copied into its log.
struct ContainerService::Io {
  std::shared_ptr<ContainerLogFile> log;
  std::vector<std::unique_ptr<StreamLogWriter>> writers;  // stdout, then stderr (none with a tty)
  std::string dir;

  std::mutex mu;
  os::UniqueFd stdin_keeper;  // guarded by mu: holds stdin's fifo open while the container asked for stdin
  // Attachers told of the exit, by id. Guarded by mu.
  std::map<int, std::function<void(int exit_code)>> on_exit;
  int next_listener = 1;  // guarded by mu
};

ContainerService::ContainerService(Backend backend, SandboxService& sandboxes)
    : backend_(std::move(backend)), sandboxes_(sandboxes), store_(std::make_shared<ContainerStore>()) {}

ContainerService::~ContainerService() = default;

errdefs::StatusOr<std::string> ContainerService::create(const std::string& sandbox_id,
                                                        const v1::ContainerConfig& config) {
  CTRD_RETURN_IF_ERROR(validate_container_config(config));
  CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, sandboxes_.store().get(sandbox_id));
  if (sandbox.state != SandboxState::kReady)
    return errdefs::FailedPrecondition("sandbox " + errdefs::quoted(sandbox.metadata.id) + " is not ready");
  if (config.metadata().name().empty())
    return errdefs::InvalidArgument("container config must include metadata with a name");
  if (config.image().image().empty()) return errdefs::InvalidArgument("container config must name an image");
  if (backend_.images == nullptr) return errdefs::Unavailable("cri: the image service is not available");
  auto image = backend_.images->get(config.image().image());
  if (!image.ok())
    return errdefs::Status(image.status().code(), "failed to resolve image " +
                                                      errdefs::quoted(config.image().image()) + ": " +
                                                      image.status().message());
  CTRD_ASSIGN_OR_RETURN(const Runtime* runtime,
                        runtime_for(*backend_.config, sandbox.metadata.runtime_handler));

  const std::string id = random_hex(32);
  const std::string name = container_name(config.metadata(), sandbox.metadata.config.metadata());
  if (auto reserved = names_.reserve(name, id); !reserved.ok())
    return errdefs::AlreadyExists("failed to reserve container name " + errdefs::quoted(name) + ": " +
                                  reserved.message());
  Undo undo;
  undo.add([this, name] { names_.release(name); });

  const std::string ns(kNamespace);
  const std::string root = backend_.root + "/containers/" + id;
  CTRD_RETURN_IF_ERROR(os::ensure_dir(root, 0700));
  undo.add([root] {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  });
  std::map<std::string, std::string> volumes;
  if (!backend_.config->ignore_image_defined_volumes) {
    for (const auto& destination : image->config.volumes) {
      const std::string dir = root + "/volumes/" + random_hex(16);
      CTRD_RETURN_IF_ERROR(os::ensure_dir(dir, 0755));
      volumes[destination] = dir;
    }
  }

  services::snapshots::Scope scope{
      .ns = ns, .lease = "", .snapshotter = backend_.config->containerd.snapshotter};
  CTRD_ASSIGN_OR_RETURN(auto lease, TemporaryLease::create(backend_.db, "cri-container-"));
  scope.lease = lease.id();
  CTRD_ASSIGN_OR_RETURN(auto rootfs,
                        backend_.snapshots->prepare(scope, id, unpack::chain_id(image->config.diff_ids), {}));
  scope.lease.clear();
  undo.add([this, scope, id] { (void)backend_.snapshots->remove(scope, id); });

  ContainerSpecInput input;
  input.id = id;
  input.sandbox_id = sandbox.metadata.id;
  input.sandbox_pid = sandbox.pid;
  input.config = &config;
  input.sandbox_config = &sandbox.metadata.config;
  input.image = &image->config;
  input.image_name = config.image().image();
  input.netns_path = sandbox.metadata.netns_path;
  input.files = sandboxes_.files(sandbox);
  input.image_volumes = volumes;
  input.read_rootfs_file = [rootfs](const std::string& path) { return read_rootfs_file(rootfs, path); };
  input.systemd_cgroup = runtime->options.systemd_cgroup;
  input.restrict_oom_score_adj = backend_.config->restrict_oom_score_adj;
  input.daemon_oom_score_adj = daemon_oom_score_adj();
  input.disable_proc_mount = backend_.config->disable_proc_mount;
  input.unset_seccomp_profile = backend_.config->unset_seccomp_profile;
  input.container_annotation_patterns = runtime->container_annotations;
  input.pod_annotation_patterns = runtime->pod_annotations;
  input.disable_hugetlb_controller = backend_.config->disable_hugetlb_controller;
  input.runtime_handler = sandbox.metadata.runtime_handler;
  input.privileged_without_host_devices = runtime->privileged_without_host_devices;
  input.swap_controller_available =
      std::filesystem::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
  CTRD_ASSIGN_OR_RETURN(json spec, container_spec(input));

  ContainerMetadata metadata{.id = id,
                             .name = name,
                             .sandbox_id = sandbox.metadata.id,
                             .config = config,
                             .image_ref = image->id,
                             .image_name = config.image().image(),
                             .log_path = "",
                             .stop_signal = image->config.stop_signal};
  const std::string& log_dir = sandbox.metadata.config.log_directory();
  if (!log_dir.empty() && !config.log_path().empty())
    metadata.log_path = (std::filesystem::path(log_dir) / config.log_path()).string();

  metadata::Container record;
  record.id = id;
  for (const auto& [k, v] : config.labels()) record.labels[k] = v;
  record.labels["io.cri-containerd.kind"] = "container";
  record.image = image->repo_tags.empty() ? image->id : image->repo_tags.front();
  record.runtime = {.name = runtime->runtime_type, .options = runc_options(*runtime)};
  record.spec = spec_value(spec);
  record.snapshotter = scope.snapshotter;
  record.snapshot_key = id;
  CTRD_ASSIGN_OR_RETURN(std::string encoded, encode_metadata(metadata));
  record.extensions[std::string(kContainerMetadataExtension)] = metadata::AnyValue{
      .type_url = "github.com/containerd/cri/pkg/store/container/Metadata", .value = encoded};
  CTRD_RETURN_IF_ERROR(backend_.containers->create(ns, record).status());
  undo.add([this, ns, id] { (void)backend_.containers->remove(ns, id); });

  const ContainerStatus created{.created_at = Clock::now()};
  CTRD_RETURN_IF_ERROR(write_status(root, created));
  CTRD_RETURN_IF_ERROR(store_->add(
      CriContainer{.metadata = metadata, .status = created, .exited = std::make_shared<ExitLatch>()}));
  emit(id, v1::CONTAINER_CREATED_EVENT);
  undo.dismiss();
  return id;
}

errdefs::Status ContainerService::start(const std::string& id_or_prefix) {
  CTRD_ASSIGN_OR_RETURN(CriContainer container, store_->get(id_or_prefix));
  const std::string id = container.metadata.id;
  if (container.status.state != v1::CONTAINER_CREATED)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(id) + " is in " +
                                       v1::ContainerState_Name(container.status.state) +
                                       " state, not CONTAINER_CREATED");
  CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, sandboxes_.store().get(container.metadata.sandbox_id));
  if (sandbox.state != SandboxState::kReady)
    return errdefs::FailedPrecondition("sandbox " + errdefs::quoted(sandbox.metadata.id) + " is not ready");
  const std::string ns(kNamespace);
  CTRD_ASSIGN_OR_RETURN(metadata::Container record, backend_.containers->get(ns, id));
  CTRD_ASSIGN_OR_RETURN(auto rootfs,
                        backend_.snapshots->mounts({.ns = ns, .lease = "", .snapshotter = record.snapshotter},
                                                   record.snapshot_key));

  auto failed = [&](const errdefs::Status& error) {
    set_status(id, [&](ContainerStatus& s) {
      s.state = v1::CONTAINER_EXITED;
      s.finished_at = Clock::now();
      s.exit_code = 128;
      s.reason = "StartError";
      s.message = error.message();
    });
    container.exited->set(runtime::Exit{.pid = 0, .status = 128, .at = Clock::now()});
    return error;
  };

  runtime::IO task_io;
  task_io.terminal = container.metadata.config.tty();
  auto attached = attach_output(container, &task_io);
  if (!attached.ok()) return failed(attached.status());
  auto io = *attached;
  if (container.metadata.config.stdin()) {
    const std::string path = io->dir + "/stdin";
    if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST)
      return failed(errdefs::Internal("cannot make fifo " + path + ": " + std::strerror(errno)));
    std::lock_guard lock(io->mu);
    io->stdin_keeper = os::UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    task_io.stdin = path;
  }

  services::tasks::CreateRequest request;
  request.container_id = id;
  request.rootfs = rootfs;
  request.io = task_io;
  auto task = backend_.tasks->create(ns, request);
  if (!task.ok()) return failed(task.status());
  {
    std::lock_guard lock(io_mu_);
    io_[id] = io;
  }
  watch(*task, id);
  auto pid = (*task)->start("");
  if (!pid.ok()) {
    (void)(*task)->kill("", SIGKILL, true);
    (void)backend_.tasks->remove(ns, id);
    return failed(pid.status());
  }
  set_status(id, [&](ContainerStatus& s) {
    if (s.state != v1::CONTAINER_CREATED) return;  // it has exited already
    s.state = v1::CONTAINER_RUNNING;
    s.started_at = Clock::now();
    s.pid = *pid;
  });
  emit(id, v1::CONTAINER_STARTED_EVENT);
  return errdefs::Status::Ok();
}

errdefs::StatusOr<std::shared_ptr<ContainerService::Io>> ContainerService::attach_output(
    const CriContainer& container, runtime::IO* task_io) {
  auto io = std::make_shared<Io>();
  io->dir = backend_.state + "/containers/" + container.metadata.id + "/io";
  CTRD_RETURN_IF_ERROR(os::ensure_dir(io->dir, 0700));
  // Output always goes through fifos the daemon reads, as the shim expects
  // for a container with stdio; without a log path it is read and dropped.
  CTRD_ASSIGN_OR_RETURN(
      io->log, ContainerLogFile::open(container.metadata.log_path.empty() ? "/dev/null"
                                                                          : container.metadata.log_path));
  const StreamLogOptions log_options{.max_line_size = backend_.config->max_container_log_line_size,
                                     .clock = {}};
  std::vector<std::pair<LogStream, std::string>> streams{{LogStream::kStdout, io->dir + "/stdout"}};
  if (!container.metadata.config.tty()) streams.emplace_back(LogStream::kStderr, io->dir + "/stderr");
  for (const auto& [stream, path] : streams) {
    CTRD_ASSIGN_OR_RETURN(os::UniqueFd fd, make_fifo(path));
    CTRD_ASSIGN_OR_RETURN(auto writer,
                          StreamLogWriter::start(log_loop_, std::move(fd), stream, io->log, log_options));
    io->writers.push_back(std::move(writer));
    (stream == LogStream::kStdout ? task_io->stdout : task_io->stderr) = path;
  }
  return io;
}

void ContainerService::watch(const std::shared_ptr<runtime::Task>& task, const std::string& id) {
  task->wait("", [self = weak_from_this(), id](errdefs::StatusOr<runtime::Exit> exit) {
    auto service = self.lock();
    if (!service) return;
    const runtime::Exit e = exit.ok() ? *exit : runtime::Exit{.pid = 0, .status = 255, .at = Clock::now()};
    // Draining the output and deleting the task take round trips: not on the runtime's thread.
    if (!service->backend_.blocking->submit([service, id, e] { service->on_exit(id, e); }))
      service->on_exit(id, e);
  });
}

void ContainerService::set_status(const std::string& id,
                                  const std::function<void(ContainerStatus&)>& change) {
  ContainerStatus updated;
  if (!store_
           ->update(id,
                    [&](ContainerStatus& s) {
                      change(s);
                      updated = s;
                    })
           .ok())
    return;
  if (auto written = write_status(backend_.root + "/containers/" + id, updated); !written.ok())
    log::warn("cannot keep a container's status", {{"id", id}, {"error", written.message()}});
}

void ContainerService::recover(const std::vector<metadata::Container>& records) {
  const std::string ns(kNamespace);
  for (const auto& record : records) {
    auto kind = record.labels.find("io.cri-containerd.kind");
    if (kind == record.labels.end() || kind->second != "container") continue;
    auto extension = record.extensions.find(std::string(kContainerMetadataExtension));
    if (extension == record.extensions.end()) continue;
    auto metadata = decode_container_metadata(extension->second.value);
    if (!metadata.ok()) {
      log::warn("cri: skipping a container whose metadata does not load",
                {{"id", record.id}, {"error", metadata.status().message()}});
      continue;
    }
    CriContainer container{.metadata = *metadata,
                           .status = ContainerStatus{.created_at = record.created_at},
                           .exited = std::make_shared<ExitLatch>()};
    if (auto kept = read_status(backend_.root + "/containers/" + record.id); kept.ok())
      container.status = *kept;
    (void)names_.reserve(container.metadata.name, container.metadata.id);
    std::shared_ptr<runtime::Task> running;
    if (auto task = backend_.tasks->task(ns, record.id); task.ok()) {
      auto state = backend_.tasks->state(**task, "");
      if (state.ok() &&
          (state->status == runtime::Status::kRunning || state->status == runtime::Status::kPaused)) {
        running = *task;
        container.status.state = v1::CONTAINER_RUNNING;
        container.status.pid = state->pid;
      } else if (state.ok() && state->status == runtime::Status::kStopped) {
        container.status.state = v1::CONTAINER_EXITED;
        container.status.exit_code = static_cast<int32_t>(state->exit_status);
        container.status.finished_at = state->exited_at;
        container.status.reason = state->exit_status == 0 ? "Completed" : "Error";
        (void)backend_.tasks->remove(ns, record.id);
      }
    } else if (container.status.state == v1::CONTAINER_RUNNING) {
      // It ended, and its task went, while no daemon was watching.
      container.status.state = v1::CONTAINER_EXITED;
      container.status.exit_code = 255;
      container.status.finished_at = Clock::now();
      container.status.reason = "Unknown";
      container.status.message = "the container's task was gone when the daemon started";
    }
    if (container.status.state == v1::CONTAINER_EXITED)
      container.exited->set(runtime::Exit{.pid = 0,
                                          .status = static_cast<uint32_t>(container.status.exit_code),
                                          .at = container.status.finished_at});
    const std::string id = container.metadata.id;
    const CriContainer copy = container;
    if (!store_->add(std::move(container)).ok()) continue;
    (void)write_status(backend_.root + "/containers/" + id, copy.status);
    if (running) {
      runtime::IO ignored;
      if (auto io = attach_output(copy, &ignored); io.ok()) {
        std::lock_guard lock(io_mu_);
        io_[id] = *io;
      } else {
        log::warn("cri: cannot copy a recovered container's output",
                  {{"id", id}, {"error", io.status().message()}});
      }
      watch(running, id);
    }
  }
}

void ContainerService::on_exit(const std::string& id, const runtime::Exit& exit) {
  std::shared_ptr<Io> io;
  {
    std::lock_guard lock(io_mu_);
    if (auto it = io_.find(id); it != io_.end()) io = it->second;
  }
  if (io) {
    for (auto& writer : io->writers) {
      if (!writer->wait_for_end(std::chrono::duration_cast<std::chrono::milliseconds>(kDrainTimeout)))
        writer->stop();
    }
    std::lock_guard lock(io->mu);
    io->stdin_keeper.reset();
  }
  const std::string ns(kNamespace);
  if (auto removed = backend_.tasks->remove(ns, id);
      !removed.ok() && removed.status().code() != errdefs::Code::kNotFound)
    log::warn("cannot delete the task of an exited container",
              {{"id", id}, {"error", removed.status().message()}});
  bool oom = false;
  {
    std::lock_guard lock(io_mu_);
    oom = oom_killed_.erase(id) > 0;
  }
  set_status(id, [&](ContainerStatus& s) {
    if (s.state == v1::CONTAINER_CREATED && s.started_at == Clock::time_point{}) s.started_at = exit.at;
    s.state = v1::CONTAINER_EXITED;
    s.finished_at = exit.at;
    s.exit_code = static_cast<int32_t>(exit.status);
    s.reason = exit_reason(exit, oom);
    s.pid = 0;
  });
  if (auto c = store_->get(id); c.ok()) c->exited->set(exit);
  if (io) {
    // Attachers learn of the exit once the status shows it.
    std::map<int, std::function<void(int)>> listeners;
    {
      std::lock_guard lock(io->mu);
      listeners.swap(io->on_exit);
    }
    for (auto& [listener, notify] : listeners) notify(static_cast<int>(exit.status));
  }
  emit(id, v1::CONTAINER_STOPPED_EVENT);
}

void ContainerService::record_oom(const std::string& id) {
  std::lock_guard lock(io_mu_);
  oom_killed_.insert(id);
}

errdefs::Status ContainerService::stop(const std::string& id_or_prefix, std::chrono::seconds timeout) {
  CTRD_ASSIGN_OR_RETURN(CriContainer container, store_->get(id_or_prefix));
  const std::string& id = container.metadata.id;
  if (container.status.state != v1::CONTAINER_RUNNING || container.exited->get())
    return errdefs::Status::Ok();
  auto task = backend_.tasks->task(std::string(kNamespace), id);
  if (task.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
  CTRD_RETURN_IF_ERROR(task.status());
  if (timeout.count() > 0) {
    const int signal = stop_signal(container.metadata.stop_signal);
    auto sent = (*task)->kill("", static_cast<uint32_t>(signal), false);
    if (!sent.ok() && sent.code() != errdefs::Code::kNotFound) return sent;
    if (container.exited->wait_for(timeout)) return errdefs::Status::Ok();
    log::info("container did not stop in time: killing it",
              {{"id", id}, {"timeout_s", std::to_string(timeout.count())}});
  }
  auto killed = (*task)->kill("", SIGKILL, true);
  if (!killed.ok() && killed.code() != errdefs::Code::kNotFound) return killed;
  if (!container.exited->wait_for(kKillTimeout))
    return errdefs::DeadlineExceeded("container " + errdefs::quoted(id) + " did not exit after SIGKILL");
  return errdefs::Status::Ok();
}

errdefs::Status ContainerService::remove(const std::string& id_or_prefix) {
  auto container = store_->get(id_or_prefix);
  if (container.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
  CTRD_RETURN_IF_ERROR(container.status());
  const std::string id = container->metadata.id;
  CTRD_RETURN_IF_ERROR(stop(id, std::chrono::seconds(0)));
  const std::string ns(kNamespace);
  if (auto removed = backend_.tasks->remove(ns, id);
      !removed.ok() && removed.status().code() != errdefs::Code::kNotFound &&
      removed.status().code() != errdefs::Code::kFailedPrecondition)
    return removed.status();
  auto record = backend_.containers->get(ns, id);
  if (record.ok()) {
    auto snapshot = backend_.snapshots->remove({.ns = ns, .lease = "", .snapshotter = record->snapshotter},
                                               record->snapshot_key);
    if (!snapshot.ok() && snapshot.code() != errdefs::Code::kNotFound) return snapshot;
    auto removed = backend_.containers->remove(ns, id);
    if (!removed.ok() && removed.code() != errdefs::Code::kNotFound) return removed;
  } else if (record.status().code() != errdefs::Code::kNotFound) {
    return record.status();
  }
  {
    std::lock_guard lock(io_mu_);
    io_.erase(id);
  }
  std::error_code ec;
  std::filesystem::remove_all(backend_.root + "/containers/" + id, ec);
  std::filesystem::remove_all(backend_.state + "/containers/" + id, ec);
  names_.release(container->metadata.name);
  cpu_rates_.forget(id);
  // Told while the store still knows the container's pod.
  emit(id, v1::CONTAINER_DELETED_EVENT);
  store_->remove(id);
  return errdefs::Status::Ok();
}

std::optional<CgroupUsage> ContainerService::task_usage(const std::string& id) {
  auto task = backend_.tasks->task(std::string(kNamespace), id);
  if (!task.ok()) return std::nullopt;
  auto metrics = (*task)->stats();
  if (!metrics.ok()) return std::nullopt;
  auto usage = decode_cgroup_metrics(*metrics);
  if (!usage.ok()) return std::nullopt;
  return *usage;
}

v1::ContainerStats ContainerService::stats(const CriContainer& container) {
  const auto& m = container.metadata;
  v1::ContainerStats out;
  auto* attributes = out.mutable_attributes();
  attributes->set_id(m.id);
  *attributes->mutable_metadata() = m.config.metadata();
  *attributes->mutable_labels() = m.config.labels();
  *attributes->mutable_annotations() = m.config.annotations();
  const auto now = Clock::now();
  const int64_t timestamp =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  if (container.status.state == v1::CONTAINER_RUNNING) {
    if (auto usage = task_usage(m.id)) {
      auto* cpu = out.mutable_cpu();
      cpu->set_timestamp(timestamp);
      cpu->mutable_usage_core_nano_seconds()->set_value(usage->cpu_nanos);
      cpu->mutable_usage_nano_cores()->set_value(cpu_rates_.sample(m.id, now, usage->cpu_nanos));
      auto* memory = out.mutable_memory();
      memory->set_timestamp(timestamp);
      memory->mutable_working_set_bytes()->set_value(usage->working_set);
      if (usage->memory_limit > 0)
        memory->mutable_available_bytes()->set_value(
            usage->memory_limit > usage->working_set ? usage->memory_limit - usage->working_set : 0);
      memory->mutable_usage_bytes()->set_value(usage->memory_usage);
      memory->mutable_rss_bytes()->set_value(usage->rss);
      memory->mutable_page_faults()->set_value(usage->page_faults);
      memory->mutable_major_page_faults()->set_value(usage->major_page_faults);
    }
  }
  auto* layer = out.mutable_writable_layer();
  layer->set_timestamp(timestamp);
  layer->mutable_fs_id()->set_mountpoint(backend_.snapshotter_root);
  auto usage = backend_.snapshots->usage(
      {.ns = std::string(kNamespace), .lease = "", .snapshotter = backend_.config->containerd.snapshotter},
      m.id);
  if (usage.ok()) {
    layer->mutable_used_bytes()->set_value(static_cast<uint64_t>(usage->size));
    layer->mutable_inodes_used()->set_value(static_cast<uint64_t>(usage->inodes));
  }
  return out;
}

errdefs::Status ContainerService::stop_all(const std::string& sandbox_id) {
  for (const auto& c : store_->list()) {
    if (c.metadata.sandbox_id != sandbox_id) continue;
    CTRD_RETURN_IF_ERROR(stop(c.metadata.id, std::chrono::seconds(0)));
  }
  return errdefs::Status::Ok();
}

errdefs::Status ContainerService::remove_all(const std::string& sandbox_id) {
  for (const auto& c : store_->list()) {
    if (c.metadata.sandbox_id != sandbox_id) continue;
    CTRD_RETURN_IF_ERROR(remove(c.metadata.id));
  }
  return errdefs::Status::Ok();
}

errdefs::Status ContainerService::update_resources(const std::string& id_or_prefix,
                                                   const v1::LinuxContainerResources& resources,
                                                   const std::map<std::string, std::string>& annotations) {
  CTRD_ASSIGN_OR_RETURN(CriContainer container, store_->get(id_or_prefix));
  const std::string& id = container.metadata.id;
  if (container.status.state != v1::CONTAINER_CREATED && container.status.state != v1::CONTAINER_RUNNING)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(id) + " is in " +
                                       v1::ContainerState_Name(container.status.state) +
                                       " state: only a created or running container can be updated");
  const std::string ns(kNamespace);
  CTRD_ASSIGN_OR_RETURN(metadata::Container record, backend_.containers->get(ns, id));
  CTRD_ASSIGN_OR_RETURN(json spec, spec_of(record));
  set_container_resources(spec, resources, backend_.config->disable_hugetlb_controller,
                          swap_controller_available());
  record.spec = spec_value(spec);
  CTRD_RETURN_IF_ERROR(backend_.containers->update(ns, record, {"spec"}).status());
  if (container.status.state != v1::CONTAINER_RUNNING) return errdefs::Status::Ok();
  CTRD_ASSIGN_OR_RETURN(auto task, backend_.tasks->task(ns, id));
  runtime::Any any;
  any.set_type_url("types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  any.set_value(spec["linux"]["resources"].dump());
  return task->update(any, annotations);
}

errdefs::Status ContainerService::reopen_log(const std::string& id_or_prefix) {
  CTRD_ASSIGN_OR_RETURN(CriContainer container, store_->get(id_or_prefix));
  if (container.status.state != v1::CONTAINER_RUNNING)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(container.metadata.id) +
                                       " is not running");
  std::shared_ptr<Io> io;
  {
    std::lock_guard lock(io_mu_);
    if (auto it = io_.find(container.metadata.id); it != io_.end()) io = it->second;
  }
  if (!io || !io->log)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(container.metadata.id) +
                                       " keeps no log");
  return io->log->reopen();
}

namespace {

// An exec's exit, shared with the task's wait callback (which may come late):
// the code, and an eventfd that wakes the streaming server's poll.
struct ExecExit {
  std::mutex mu;
  std::optional<int> code;  // guarded by mu
  os::UniqueFd fd;

  void set(int exit_code) {
    {
      std::lock_guard lock(mu);
      code = exit_code;
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t ignored = ::write(fd.get(), &one, sizeof one);
  }
  std::optional<int> get() {
    std::lock_guard lock(mu);
    return code;
  }
};

// An exec streamed by the streaming server.
class StreamedExec : public streaming::StreamProcess {
 public:
  StreamedExec(std::shared_ptr<runtime::Task> task, std::string exec_id, std::string dir,
               std::shared_ptr<ExecExit> exit, bool tty)
      : task_(std::move(task)),
        exec_id_(std::move(exec_id)),
        dir_(std::move(dir)),
        exit_(std::move(exit)),
        tty_(tty) {}

  ~StreamedExec() override {
    // The client is gone: an exec still running goes with it.
    if (started_ && !exit_code()) {
      (void)task_->kill(exec_id_, SIGKILL, false);
      pollfd p{exit_->fd.get(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kKillTimeout).count()));
    }
    if (created_) (void)task_->delete_process(exec_id_);
    stdin_fd.reset();
    stdout_fd.reset();
    stderr_fd.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  errdefs::Status resize(uint16_t width, uint16_t height) override {
    return task_->resize_pty(exec_id_, width, height);
  }
  // The shim holds the process's stdin until told. A terminal stays open, as
  // containerd leaves it: closing it would hang up the session (SIGHUP).
  void stdin_closed() override {
    if (!tty_) (void)task_->close_io(exec_id_);
  }
  int exit_fd() const override { return exit_->fd.get(); }
  std::optional<int> exit_code() const override { return exit_->get(); }

  bool created_ = false;
  bool started_ = false;

 private:
  std::shared_ptr<runtime::Task> task_;
  const std::string exec_id_;
  const std::string dir_;
  std::shared_ptr<ExecExit> exit_;
  const bool tty_;
};

// The daemon's end of an exec's stdin fifo. Read-write, so the open does not
// wait for the shim; being the only writer, closing it is the process's EOF.
errdefs::StatusOr<os::UniqueFd> make_stdin_fifo(const std::string& path) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST)
    return errdefs::Internal("cannot make fifo " + path + ": " + std::strerror(errno));
  os::UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return errdefs::Internal("cannot open fifo " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

errdefs::StatusOr<ContainerService::ExecTarget> ContainerService::exec_target(
    const std::string& id_or_prefix, const std::vector<std::string>& command, bool tty,
    std::string_view call) {
  if (command.empty()) return errdefs::InvalidArgument(std::string(call) + " needs a command");
  CTRD_ASSIGN_OR_RETURN(CriContainer container, store_->get(id_or_prefix));
  const std::string id = container.metadata.id;
  if (container.status.state != v1::CONTAINER_RUNNING)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(id) + " is not running");
  const std::string ns(kNamespace);
  CTRD_ASSIGN_OR_RETURN(auto task, backend_.tasks->task(ns, id));
  CTRD_ASSIGN_OR_RETURN(metadata::Container record, backend_.containers->get(ns, id));
  CTRD_ASSIGN_OR_RETURN(json spec, spec_of(record));
  json process = spec.value("process", json::object());
  process["args"] = command;
  process["terminal"] = tty;
  return ExecTarget{.id = id, .task = std::move(task), .process = process.dump()};
}

errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> ContainerService::start_stream_exec(
    const streaming::ExecRequest& request) {
  CTRD_ASSIGN_OR_RETURN(ExecTarget target,
                        exec_target(request.container_id, request.cmd, request.tty, "Exec"));
  const std::string& id = target.id;
  auto& task = target.task;

  const std::string exec_id = random_hex(16);
  const std::string dir = backend_.state + "/containers/" + id + "/io/exec-" + exec_id;
  CTRD_RETURN_IF_ERROR(os::ensure_dir(dir, 0700));
  auto exit = std::make_shared<ExecExit>();
  exit->fd = os::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!exit->fd.valid()) return errdefs::FromErrno(errno, "eventfd for an exec");
  auto streamed = std::make_unique<StreamedExec>(task, exec_id, dir, exit, request.tty);
  runtime::IO io{.stdin = "", .stdout = "", .stderr = "", .terminal = request.tty};
  if (request.stdin) {
    io.stdin = dir + "/stdin";
    CTRD_ASSIGN_OR_RETURN(streamed->stdin_fd, make_stdin_fifo(io.stdin));
  }
  if (request.stdout || request.tty) {
    io.stdout = dir + "/stdout";
    CTRD_ASSIGN_OR_RETURN(streamed->stdout_fd, make_fifo(io.stdout));
  }
  if (request.stderr && !request.tty) {
    io.stderr = dir + "/stderr";
    CTRD_ASSIGN_OR_RETURN(streamed->stderr_fd, make_fifo(io.stderr));
  }
  runtime::Any any;
  any.set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
  any.set_value(target.process);
  CTRD_RETURN_IF_ERROR(backend_.tasks->exec(*task, exec_id, io, any));
  streamed->created_ = true;
  task->wait(exec_id, [exit](errdefs::StatusOr<runtime::Exit> done) {
    exit->set(done.ok() ? static_cast<int>(done->status) : 255);
  });
  CTRD_RETURN_IF_ERROR(task->start(exec_id).status());
  streamed->started_ = true;
  return std::unique_ptr<streaming::StreamProcess>(std::move(streamed));
}

namespace {

// An attacher of a running container: pipes fed from its output streams
// (StreamLogWriter tees), its stdin fifo's write end, and its exit. Going
// away detaches and never stops the container.
class Attachment : public streaming::StreamProcess {
 public:
  Attachment(std::shared_ptr<runtime::Task> task, std::shared_ptr<ContainerService::Io> io)
      : task_(std::move(task)), io_(std::move(io)) {}

  ~Attachment() override {
    for (auto& [writer, tee] : tees_) writer->remove_tee(tee);
    std::lock_guard lock(io_->mu);
    io_->on_exit.erase(listener_);
  }

  errdefs::Status resize(uint16_t width, uint16_t height) override {
    return task_->resize_pty("", width, height);
  }
  // Only a stdin_once attacher holds the container's stdin (attach_stream):
  // its end is the container's, which the shim passes on when told.
  void stdin_closed() override {
    if (owns_stdin_) (void)task_->close_io("");
  }
  bool owns_stdin_ = false;
  int exit_fd() const override { return exit_->fd.get(); }
  std::optional<int> exit_code() const override { return exit_->get(); }

  std::shared_ptr<runtime::Task> task_;
  std::shared_ptr<ContainerService::Io> io_;
  std::shared_ptr<ExecExit> exit_ = std::make_shared<ExecExit>();
  std::vector<std::pair<StreamLogWriter*, int>> tees_;
  int listener_ = 0;
};

}  // namespace

errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> ContainerService::attach_stream(
    const streaming::AttachRequest& request) {
  CTRD_ASSIGN_OR_RETURN(CriContainer container, store_->get(request.container_id));
  const std::string id = container.metadata.id;
  if (container.status.state != v1::CONTAINER_RUNNING)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(id) + " is not running");
  std::shared_ptr<Io> io;
  {
    std::lock_guard lock(io_mu_);
    if (auto it = io_.find(id); it != io_.end()) io = it->second;
  }
  if (!io)
    return errdefs::FailedPrecondition("container " + errdefs::quoted(id) + " has no output to attach to");
  CTRD_ASSIGN_OR_RETURN(auto task, backend_.tasks->task(std::string(kNamespace), id));
  auto attachment = std::make_unique<Attachment>(task, io);
  attachment->exit_->fd = os::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!attachment->exit_->fd.valid()) return errdefs::FromErrno(errno, "eventfd for an attacher");
  auto tee = [&](size_t index, os::UniqueFd& into) -> errdefs::Status {
    if (index >= io->writers.size()) return errdefs::Status::Ok();
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return errdefs::FromErrno(errno, "pipe for an attacher");
    into = os::UniqueFd(ends[0]);
    StreamLogWriter* writer = io->writers[index].get();
    attachment->tees_.emplace_back(writer, writer->add_tee(os::UniqueFd(ends[1])));
    return errdefs::Status::Ok();
  };
  if (request.stdout) CTRD_RETURN_IF_ERROR(tee(0, attachment->stdout_fd));
  if (request.stderr && !container.metadata.config.tty()) CTRD_RETURN_IF_ERROR(tee(1, attachment->stderr_fd));
  std::lock_guard lock(io->mu);
  if (request.stdin && io->stdin_keeper.valid()) {
    // With stdin_once the attacher takes the only write end: the end of its
    // stdin is the container's. Otherwise stdin stays open for the next one.
    attachment->owns_stdin_ = container.metadata.config.stdin_once() && !container.metadata.config.tty();
    attachment->stdin_fd = attachment->owns_stdin_
                               ? std::move(io->stdin_keeper)
                               : os::UniqueFd(::fcntl(io->stdin_keeper.get(), F_DUPFD_CLOEXEC, 0));
  }
  attachment->listener_ = io->next_listener++;
  io->on_exit[attachment->listener_] = [exit = attachment->exit_](int code) { exit->set(code); };
  return std::unique_ptr<streaming::StreamProcess>(std::move(attachment));
}

errdefs::StatusOr<ExecSyncResult> ContainerService::exec_sync(const std::string& id_or_prefix,
                                                              const std::vector<std::string>& command,
                                                              std::chrono::seconds timeout) {
  CTRD_ASSIGN_OR_RETURN(ExecTarget target, exec_target(id_or_prefix, command, false, "ExecSync"));
  const std::string& id = target.id;
  auto& task = target.task;

  const std::string exec_id = random_hex(16);
  const std::string dir = backend_.state + "/containers/" + id + "/io/exec-" + exec_id;
  CTRD_RETURN_IF_ERROR(os::ensure_dir(dir, 0700));
  struct DirGuard {
    std::string path;
    ~DirGuard() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } dir_guard{dir};
  CTRD_ASSIGN_OR_RETURN(os::UniqueFd out, make_fifo(dir + "/stdout"));
  CTRD_ASSIGN_OR_RETURN(os::UniqueFd err, make_fifo(dir + "/stderr"));
  runtime::Any any;
  any.set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
  any.set_value(target.process);
  CTRD_RETURN_IF_ERROR(backend_.tasks->exec(
      *task, exec_id, {.stdin = "", .stdout = dir + "/stdout", .stderr = dir + "/stderr", .terminal = false},
      any));
  struct ProcessGuard {
    std::shared_ptr<runtime::Task> task;
    std::string exec_id;
    ~ProcessGuard() { (void)task->delete_process(exec_id); }
  } process_guard{task, exec_id};
  auto exited = std::make_shared<ExitLatch>();
  task->wait(exec_id, [exited](errdefs::StatusOr<runtime::Exit> exit) {
    exited->set(exit.ok() ? *exit : runtime::Exit{.pid = 0, .status = 255, .at = Clock::now()});
  });
  CTRD_RETURN_IF_ERROR(task->start(exec_id).status());

  ExecSyncResult result;
  const auto deadline = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
  std::optional<Clock::time_point> drain_until;
  bool timed_out = false;
  pollfd fds[2] = {{out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.stdout, &result.stderr};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (!drain_until && exited->get()) drain_until = Clock::now() + kDrainTimeout;
    if (drain_until && Clock::now() > *drain_until) break;
    if (!timed_out && Clock::now() > deadline) {
      timed_out = true;
      (void)task->kill(exec_id, SIGKILL, false);
    }
    if (::poll(fds, 2, 100) < 0 && errno != EINTR)
      return errdefs::Internal(std::string("poll: ") + std::strerror(errno));
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[16384];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        fds[i].fd = -1;
      }
    }
  }
  std::optional<runtime::Exit> exit = exited->get();
  if (!exit) {
    // The output closed before the exit was reported: wait for it, within the timeout.
    const bool bounded = !timed_out && timeout.count() > 0;
    exit = exited->wait_for(bounded ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::max(deadline - Clock::now(), Clock::duration::zero()))
                                    : std::chrono::duration_cast<std::chrono::milliseconds>(kKillTimeout));
    if (!exit && bounded) {
      timed_out = true;
      (void)task->kill(exec_id, SIGKILL, false);
      exit = exited->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(kKillTimeout));
    }
  }
  if (timed_out)
    return errdefs::DeadlineExceeded("command " + errdefs::quoted(command.front()) + " timed out after " +
                                     std::to_string(timeout.count()) + "s");
  if (!exit)
    return errdefs::DeadlineExceeded("the exit of command " + errdefs::quoted(command.front()) +
                                     " was not reported");
  result.exit_code = static_cast<int32_t>(exit->status);
  return result;
}

}  // namespace ctrd::cri
