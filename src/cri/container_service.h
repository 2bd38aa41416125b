// cri/container_service: the CRI's containers — CreateContainer,
// StartContainer, StopContainer, RemoveContainer, ExecSync,
// ReopenContainerLog and what ContainerStatus and ListContainers read. A
// container is a container record (its spec built by cri/pod_spec from the
// ContainerConfig, the image config and its sandbox) on a snapshot of its
// image, and a task whose stdout and stderr the daemon copies into the pod's
// log directory in the CRI log format (cri/log_writer).
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "cri/backend.h"
#include "cri/container_store.h"
#include "cri/log_writer.h"
#include "cri/sandbox_service.h"
#include "cri/stats.h"
#include "errdefs/errdefs.h"
#include "streaming/runtime.h"

namespace ctrd::cri {

struct ExecSyncResult {
  std::string stdout;
  std::string stderr;
  int32_t exit_code = 0;
};

class ContainerService : public std::enable_shared_from_this<ContainerService> {
 public:
  ContainerService(Backend backend, SandboxService& sandboxes);
  ~ContainerService();

  errdefs::StatusOr<std::string> create(const std::string& sandbox_id,
                                        const ::runtime::v1::ContainerConfig& config);
  errdefs::Status start(const std::string& id);
  // Sends the image's stop signal (SIGTERM without one), then SIGKILL after
  // `timeout`; Ok for a container that is not running.
  errdefs::Status stop(const std::string& id, std::chrono::seconds timeout);
  // Stops the container if it runs, then forgets it (the log stays). Ok when gone.
  errdefs::Status remove(const std::string& id);
  // Runs `command` in the container and collects its output; after
  // `timeout` (zero: none) the process is killed and DeadlineExceeded returned.
  errdefs::StatusOr<ExecSyncResult> exec_sync(const std::string& id, const std::vector<std::string>& command,
                                              std::chrono::seconds timeout);
  // An exec whose stdio the streaming server streams (Exec): its fifos are
  // open, the process started; destroying the result kills it if it still
  // runs and deletes it.
  errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> start_stream_exec(
      const streaming::ExecRequest& request);
  // The container's stdio for an attacher (Attach).
  errdefs::StatusOr<std::unique_ptr<streaming::StreamProcess>> attach_stream(
      const streaming::AttachRequest& request);
  errdefs::Status reopen_log(const std::string& id);
  // New resource limits: into the container's spec, and onto its cgroup
  // while it runs. FailedPrecondition once it has exited.
  errdefs::Status update_resources(const std::string& id,
                                   const ::runtime::v1::LinuxContainerResources& resources,
                                   const std::map<std::string, std::string>& annotations);

  // The container's resource use: CPU and memory while it runs, its
  // writable layer always.
  ::runtime::v1::ContainerStats stats(const CriContainer& container);
  // The same for a sandbox's own (pause) task: CPU and memory, when it runs.
  std::optional<CgroupUsage> task_usage(const std::string& id);

  // What StopPodSandbox and RemovePodSandbox do to the pod's containers first.
  errdefs::Status stop_all(const std::string& sandbox_id);
  errdefs::Status remove_all(const std::string& sandbox_id);

  // What a restarted daemon finds: the CRI containers among these records
  // (kind "container"), their tasks reattached — a running one's output
  // copied to its log again, one that exited meanwhile reported exited.
  void recover(const std::vector<metadata::Container>& records);

  // The runtime reported an OOM kill in the container: its exit reason is OOMKilled.
  void record_oom(const std::string& id);

  // Told of each container created, started, stopped and deleted (after the
  // store has the change). Set before any call.
  using EventSink = std::function<void(const std::string& id, ::runtime::v1::ContainerEventType type)>;
  void set_event_sink(EventSink sink) { event_sink_ = std::move(sink); }

  ContainerStore& store() { return *store_; }

 public:
  // A started container's output and stdin plumbing (defined in the .cpp).
  struct Io;

 private:
  // What an exec runs in: a running container's id and task, and the
  // process spec (JSON) of `command` there.
  struct ExecTarget {
    std::string id;
    std::shared_ptr<runtime::Task> task;
    std::string process;
  };
  errdefs::StatusOr<ExecTarget> exec_target(const std::string& id_or_prefix,
                                            const std::vector<std::string>& command, bool tty,
                                            std::string_view call);
  void on_exit(const std::string& id, const runtime::Exit& exit);
  void emit(const std::string& id, ::runtime::v1::ContainerEventType type) {
    if (event_sink_) event_sink_(id, type);
  }
  // Changes the status in the store and in its file.
  void set_status(const std::string& id, const std::function<void(ContainerStatus&)>& change);
  // Copies the task's output fifos (already made under the io dir) into the log.
  errdefs::StatusOr<std::shared_ptr<Io>> attach_output(const CriContainer& container, runtime::IO* task_io);
  void watch(const std::shared_ptr<runtime::Task>& task, const std::string& id);

  const Backend backend_;
  SandboxService& sandboxes_;
  // Reads every container's output into its log (one thread for all).
  const std::shared_ptr<LogLoop> log_loop_ = std::make_shared<LogLoop>();
  std::shared_ptr<ContainerStore> store_;
  NameIndex names_;
  std::mutex io_mu_;
  std::map<std::string, std::shared_ptr<Io>> io_;  // of started containers, by id
  std::set<std::string> oom_killed_;               // guarded by io_mu_
  CpuRates cpu_rates_;
  EventSink event_sink_;
};

}  // namespace ctrd::cri
