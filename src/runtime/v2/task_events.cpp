#include "runtime/v2/task_events.h"

#include <github.com/containerd/containerd/api/events/task.pb.h>

#include "events/publish.h"
#include "protobuf/time.h"
#include "runtime/v2/shim_task.h"

namespace ctrd::runtime::v2 {

void TaskEvents::exit(const ShimTask& task, const runtime::Exit& exit) const {
  if (!exchange_) return;
  containerd::events::TaskExit event;
  event.set_container_id(task.id());
  event.set_id(task.id());
  event.set_pid(exit.pid);
  event.set_exit_status(exit.status);
  *event.mutable_exited_at() = protobuf::to_timestamp(exit.at);
  (void)events::publish(*exchange_, task.ns(), "/tasks/exit", event);
}

void TaskEvents::deleted(const ShimTask& task, const runtime::Exit& exit) const {
  if (!exchange_) return;
  containerd::events::TaskDelete event;
  event.set_container_id(task.id());
  event.set_pid(exit.pid);
  event.set_exit_status(exit.status);
  *event.mutable_exited_at() = protobuf::to_timestamp(exit.at);
  (void)events::publish(*exchange_, task.ns(), "/tasks/delete", event);
}

}  // namespace ctrd::runtime::v2
