// cri/validate: what a pod or container config must satisfy before anything
// is made for it — the names the daemon builds ids and paths from, log paths
// that stay inside the pod's log directory, absolute host and container paths
// without "..", enum values the schema defines, and a bound on labels and
// annotations — each refused as InvalidArgument naming the field.
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include "errdefs/errdefs.h"

namespace ctrd::cri {

// Labels and annotations together, keys and values: Kubernetes' own bound on
// an object's annotations.
inline constexpr size_t kMaxMetadataBytes = 256 * 1024;

errdefs::Status validate_pod_config(const ::runtime::v1::PodSandboxConfig& config);
errdefs::Status validate_container_config(const ::runtime::v1::ContainerConfig& config);

}  // namespace ctrd::cri
