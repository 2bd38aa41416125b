// services/diff: layer apply and diff as containerd's API defines them.
//   io.containerd.service.v1.diff-service — hands each call to the differ
//     plugins named in its config (`default`, in order; containerd's key);
//   io.containerd.grpc.v1.diff            — its gRPC front end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "diff/diff.h"
#include "plugin/plugin.h"

namespace ctrd::services::diff {

namespace df = ctrd::diff;

class DiffService {
 public:
  explicit DiffService(std::vector<std::shared_ptr<df::Differ>> differs) : differs_(std::move(differs)) {}

  // The first differ that does not answer NotImplemented decides.
  errdefs::StatusOr<df::Descriptor> apply(const df::ApplyRequest& request);
  errdefs::StatusOr<df::Descriptor> compare(const df::CompareRequest& request);

 private:
  std::vector<std::shared_ptr<df::Differ>> differs_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::services::diff
