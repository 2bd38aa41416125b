#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>

#include "errdefs/grpc_status.h"
#include "filters/filters.h"
#include "protobuf/time.h"
#include "protobuf/types.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/unary.h"
#include "services/registration.h"
#include "services/tasks/tasks.h"

namespace ctrd::services::tasks {
namespace {

using protobuf::from_proto;
using protobuf::to_timestamp;

namespace api = containerd::services::tasks::v1;
namespace types = containerd::v1::types;
using runtime::Task;

// A process that has not exited has no exit time; containerd sends Go's zero
// time then, which is what an unset Timestamp decodes to on the client.
void set_time(runtime::SystemTime t, google::protobuf::Timestamp* out) {
  if (t != runtime::SystemTime{}) *out = to_timestamp(t);
}

types::Status to_proto(runtime::Status s) {
  switch (s) {
    case runtime::Status::kCreated:
      return types::CREATED;
    case runtime::Status::kRunning:
      return types::RUNNING;
    case runtime::Status::kStopped:
      return types::STOPPED;
    case runtime::Status::kPaused:
      return types::PAUSED;
    case runtime::Status::kPausing:
      return types::PAUSING;
    case runtime::Status::kUnknown:
      break;
  }
  return types::UNKNOWN;
}

void to_proto(const runtime::ProcessState& state, types::Process* out) {
  out->set_id(state.id);
  out->set_pid(state.pid);
  out->set_status(to_proto(state.status));
  out->set_stdin(state.io.stdin);
  out->set_stdout(state.io.stdout);
  out->set_stderr(state.io.stderr);
  out->set_terminal(state.io.terminal);
  out->set_exit_status(state.exit_status);
  set_time(state.exited_at, out->mutable_exited_at());
}

void to_proto(const runtime::Exit& exit, api::DeleteResponse* out) {
  out->set_pid(exit.pid);
  out->set_exit_status(exit.status);
  set_time(exit.at, out->mutable_exited_at());
}

runtime::IO io_of(const std::string& in, const std::string& out, const std::string& err, bool terminal) {
  return {.stdin = in, .stdout = out, .stderr = err, .terminal = terminal};
}

// Wait's reactor: it holds no thread while the process runs. It finishes
// either with the exit or, when the client goes away (or the server shuts
// down), as cancelled; whichever comes first wins, and the late one finds the
// call finished and leaves the (by then freed) response alone.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit WaitReactor(api::WaitResponse* resp) : state_(std::make_shared<State>(this, resp)) {}

  Task::WaitCallback callback() {
    return [state = state_](errdefs::StatusOr<runtime::Exit> exit) {
      std::lock_guard lock(state->mu);
      if (state->finished) return;
      state->finished = true;
      if (exit.ok()) {
        state->resp->set_exit_status(exit->status);
        set_time(exit->at, state->resp->mutable_exited_at());
      }
      state->reactor->Finish(errdefs::to_grpc(exit.status()));
    };
  }
  void fail(const errdefs::Status& status) { state_->finish(errdefs::to_grpc(status)); }

  void OnCancel() override { state_->finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

 private:
  struct State {
    State(WaitReactor* r, api::WaitResponse* w) : reactor(r), resp(w) {}
    void finish(const grpc::Status& status) {
      std::lock_guard lock(mu);
      if (finished) return;
      finished = true;
      reactor->Finish(status);
    }
    std::mutex mu;
    WaitReactor* reactor;
    api::WaitResponse* resp;
    bool finished = false;
  };
  std::shared_ptr<State> state_;
};

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Tasks::CallbackService> {
 public:
  GrpcFrontEnd(std::shared_ptr<TasksService> s, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(std::move(s)), blocking_(std::move(blocking)) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* ctx, const api::CreateTaskRequest* req,
                                   api::CreateTaskResponse* resp) override {
    CreateRequest r{
        .container_id = req->container_id(),
        .rootfs = from_proto(req->rootfs()),
        .io = io_of(req->stdin(), req->stdout(), req->stderr(), req->terminal()),
        .options = req->has_options() ? std::optional(req->options()) : std::nullopt,
        .runtime_path = req->runtime_path(),
        .checkpoint = req->has_checkpoint(),
    };
    return blocking(ctx,
                    [service = service_, r = std::move(r), resp](const std::string& ns) -> errdefs::Status {
                      CTRD_ASSIGN_OR_RETURN(auto task, service->create(ns, r));
                      resp->set_container_id(r.container_id);
                      resp->set_pid(task->pid());
                      return errdefs::Status::Ok();
                    });
  }
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* ctx, const api::StartRequest* req,
                                  api::StartResponse* resp) override {
    return on_task(ctx, req->container_id(), [exec_id = req->exec_id(), resp](Task& task) -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(uint32_t pid, task.start(exec_id));
      resp->set_pid(pid);
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const api::DeleteTaskRequest* req,
                                   api::DeleteResponse* resp) override {
    return blocking(
        ctx, [service = service_, id = req->container_id(), resp](const std::string& ns) -> errdefs::Status {
          CTRD_ASSIGN_OR_RETURN(auto exit, service->remove(ns, id));
          resp->set_id(id);
          to_proto(exit, resp);
          return errdefs::Status::Ok();
        });
  }
  grpc::ServerUnaryReactor* DeleteProcess(grpc::CallbackServerContext* ctx,
                                          const api::DeleteProcessRequest* req,
                                          api::DeleteResponse* resp) override {
    return on_task(ctx, req->container_id(), [exec_id = req->exec_id(), resp](Task& task) -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto exit, task.delete_process(exec_id));
      resp->set_id(exec_id);
      to_proto(exit, resp);
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const api::GetRequest* req,
                                api::GetResponse* resp) override {
    return on_task(ctx, req->container_id(),
                   [service = service_, exec_id = req->exec_id(), resp](Task& task) -> errdefs::Status {
                     CTRD_ASSIGN_OR_RETURN(auto state, service->state(task, exec_id));
                     to_proto(state, resp->mutable_process());
                     return errdefs::Status::Ok();
                   });
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const api::ListTasksRequest*,
                                 api::ListTasksResponse* resp) override {
    return blocking(ctx, [service = service_, resp](const std::string& ns) {
      for (const auto& state : service->states(ns)) to_proto(state, resp->add_tasks());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Kill(grpc::CallbackServerContext* ctx, const api::KillRequest* req,
                                 google::protobuf::Empty*) override {
    return on_task(ctx, req->container_id(),
                   [exec_id = req->exec_id(), signal = req->signal(), all = req->all()](Task& task) {
                     return task.kill(exec_id, signal, all);
                   });
  }
  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* ctx, const api::ExecProcessRequest* req,
                                 google::protobuf::Empty*) override {
    return on_task(ctx, req->container_id(),
                   [service = service_, exec_id = req->exec_id(),
                    io = io_of(req->stdin(), req->stdout(), req->stderr(), req->terminal()),
                    spec = req->spec()](Task& task) { return service->exec(task, exec_id, io, spec); });
  }
  grpc::ServerUnaryReactor* ResizePty(grpc::CallbackServerContext* ctx, const api::ResizePtyRequest* req,
                                      google::protobuf::Empty*) override {
    return on_task(ctx, req->container_id(),
                   [exec_id = req->exec_id(), width = req->width(), height = req->height()](Task& task) {
                     return task.resize_pty(exec_id, width, height);
                   });
  }
  grpc::ServerUnaryReactor* CloseIO(grpc::CallbackServerContext* ctx, const api::CloseIORequest* req,
                                    google::protobuf::Empty*) override {
    return on_task(ctx, req->container_id(),
                   [service = service_, exec_id = req->exec_id(), close_stdin = req->stdin()](Task& task) {
                     return service->close_io(task, exec_id, close_stdin);
                   });
  }
  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* ctx, const api::PauseTaskRequest* req,
                                  google::protobuf::Empty*) override {
    return on_task(ctx, req->container_id(), [](Task& task) { return task.pause(); });
  }
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* ctx, const api::ResumeTaskRequest* req,
                                   google::protobuf::Empty*) override {
    return on_task(ctx, req->container_id(), [](Task& task) { return task.resume(); });
  }
  grpc::ServerUnaryReactor* ListPids(grpc::CallbackServerContext* ctx, const api::ListPidsRequest* req,
                                     api::ListPidsResponse* resp) override {
    return on_task(ctx, req->container_id(), [resp](Task& task) -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(auto processes, task.pids());
      for (auto& p : processes) *resp->add_processes() = std::move(p);
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* ctx,
                                       const api::CheckpointTaskRequest* req,
                                       api::CheckpointTaskResponse*) override {
    // The task is looked up first so a wrong id is NotFound, as in containerd.
    return on_task(ctx, req->container_id(),
                   [service = service_](Task& task) { return service->checkpoint(task); });
  }
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx, const api::UpdateTaskRequest* req,
                                   google::protobuf::Empty*) override {
    std::map<std::string, std::string> annotations(req->annotations().begin(), req->annotations().end());
    return on_task(ctx, req->container_id(),
                   [resources = req->resources(), annotations = std::move(annotations)](Task& task) {
                     return task.update(resources, annotations);
                   });
  }
  grpc::ServerUnaryReactor* Metrics(grpc::CallbackServerContext* ctx, const api::MetricsRequest* req,
                                    api::MetricsResponse* resp) override {
    auto filter = filters::parse_all({req->filters().begin(), req->filters().end()});
    if (!filter.ok()) {
      return server::unary(ctx, [&] { return errdefs::InvalidArgument(filter.status().message()); });
    }
    return blocking(ctx,
                    [service = service_, filter = std::move(filter).value(),
                     resp](const std::string& ns) -> errdefs::Status {
                      for (auto& m : service->metrics(ns, filter)) {
                        auto* metric = resp->add_metrics();
                        *metric->mutable_timestamp() = to_timestamp(m.collected_at);
                        metric->set_id(m.id);
                        *metric->mutable_data() = std::move(m.stats);
                      }
                      return errdefs::Status::Ok();
                    });
  }
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* ctx, const api::WaitRequest* req,
                                 api::WaitResponse* resp) override {
    auto* reactor = new WaitReactor(resp);
    auto task = [&]() -> errdefs::StatusOr<std::shared_ptr<Task>> {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      return service_->task(ns, req->container_id());
    }();
    if (!task.ok()) {
      reactor->fail(task.status());
    } else {
      (*task)->wait(req->exec_id(), reactor->callback());
    }
    return reactor;
  }

 private:
  // Runs `work(namespace)` on a thread of its own: it talks to a shim, which
  // takes a ttRPC round trip (tens of milliseconds for runc create). `work`
  // owns what it uses.
  template <typename Work>
  grpc::ServerUnaryReactor* blocking(grpc::CallbackServerContext* ctx, Work work) {
    auto ns = server::namespace_of(*ctx);
    if (!ns.ok()) return server::unary(ctx, [&] { return ns.status(); });
    return server::unary_blocking(
        ctx, *blocking_, [ns = std::move(ns).value(), work = std::move(work)]() mutable { return work(ns); });
  }
  // blocking() for a call on the container's task.
  template <typename Work>
  grpc::ServerUnaryReactor* on_task(grpc::CallbackServerContext* ctx, std::string container_id, Work work) {
    return blocking(ctx,
                    [service = service_, id = std::move(container_id),
                     work = std::move(work)](const std::string& ns) mutable -> errdefs::Status {
                      CTRD_ASSIGN_OR_RETURN(auto task, service->task(ns, id));
                      return work(*task);
                    });
  }

  std::shared_ptr<TasksService> service_;
  std::shared_ptr<executor::WorkerPool> blocking_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<TasksService, metadata::DB, runtime::Runtime, monitor::TaskMonitor>(
      registry, "tasks-service",
      {plugin::type::kMetadata, plugin::type::kRuntimeV2, plugin::type::kTaskMonitor},
      [](plugin::InitContext&, std::shared_ptr<metadata::DB> db, std::shared_ptr<runtime::Runtime> tasks,
         std::shared_ptr<monitor::TaskMonitor> monitor) {
        // Tasks recovered from the previous run are watched as new ones are.
        for (auto& task : tasks->list("")) monitor->monitor(std::move(task));
        return std::make_shared<TasksService>(std::move(db), std::move(tasks), std::move(monitor));
      });
  register_grpc_front_end<GrpcFrontEnd, TasksService>(registry, "tasks", "tasks-service");
}

}  // namespace ctrd::services::tasks
