#include "services/diff/diff.h"

namespace ctrd::services::diff {

errdefs::StatusOr<df::Descriptor> DiffService::apply(const df::ApplyRequest& request) {
  for (const auto& d : differs_) {
    auto applied = d->apply(request);
    if (applied.ok() || applied.status().code() != errdefs::Code::kNotImplemented) return applied;
  }
  return errdefs::NotImplemented("no differ can apply layer of media type " + request.layer.media_type);
}

errdefs::StatusOr<df::Descriptor> DiffService::compare(const df::CompareRequest& request) {
  for (const auto& d : differs_) {
    auto diffed = d->compare(request);
    if (diffed.ok() || diffed.status().code() != errdefs::Code::kNotImplemented) return diffed;
  }
  return errdefs::NotImplemented("no differ can compare these mounts");
}

}  // namespace ctrd::services::diff
