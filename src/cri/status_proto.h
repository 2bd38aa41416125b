// cri/status_proto: what the CRI's status and list calls answer, made from
// the sandbox and container stores — the runtime.v1 messages and the filters
// ListPodSandbox and ListContainers apply (id prefix, state, pod, labels).
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include "cri/container_store.h"
#include "cri/sandbox_store.h"

namespace ctrd::cri {

int64_t unix_nanos(std::chrono::system_clock::time_point time);

void to_proto(const Sandbox& sandbox, ::runtime::v1::PodSandboxStatus* out);
void to_proto(const Sandbox& sandbox, ::runtime::v1::PodSandbox* out);
void to_proto(const CriContainer& container, ::runtime::v1::ContainerStatus* out);
void to_proto(const CriContainer& container, ::runtime::v1::Container* out);

bool matches(const ::runtime::v1::PodSandboxFilter& filter, const Sandbox& sandbox);
bool matches(const ::runtime::v1::ContainerFilter& filter, const CriContainer& container);

}  // namespace ctrd::cri
