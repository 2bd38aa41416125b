// A stand-in for src/runtime/v2 at link time (fake_runtime.cpp defines the
// TaskManager and Task symbols the tasks service uses): no shims, tasks kept
// in memory, and every create recorded so tests can check what the service
// asked the runtime for.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/v2/task_manager.h"

namespace ctrd::runtime::v2::fake {

struct Recorded {
  std::string ns;
  std::string id;
  CreateOptions options;
};

// What the fake runtime was asked, and how it answers; reset() between tests.
struct Runtime {
  std::mutex mu;
  std::vector<Recorded> creates;
  std::set<std::pair<std::string, std::string>> running;  // remove() refuses these
  errdefs::Status next_create_error;                      // returned once by create()

  static Runtime& get();
  void reset();
};

}  // namespace ctrd::runtime::v2::fake
