// runtime/v2/task_events: the task events the v2 runtime publishes itself.
// A live shim publishes its task's events (through Events/Forward); a shim
// that died cannot, so its task's /tasks/exit, and the /tasks/delete that
// follows its removal, come from here.
#pragma once

#include <memory>

#include "runtime/runtime.h"

namespace ctrd::events {
class Exchange;
}

namespace ctrd::runtime::v2 {

class ShimTask;

class TaskEvents {
 public:
  // Publishes nothing without an exchange.
  explicit TaskEvents(std::shared_ptr<events::Exchange> exchange) : exchange_(std::move(exchange)) {}

  void exit(const ShimTask& task, const runtime::Exit& exit) const;
  void deleted(const ShimTask& task, const runtime::Exit& exit) const;

 private:
  std::shared_ptr<events::Exchange> exchange_;
};

}  // namespace ctrd::runtime::v2
