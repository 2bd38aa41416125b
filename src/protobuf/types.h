// protobuf/types.h: containerd.types messages (Mount, Descriptor) <->
// ctrd's structs, for the gRPC front ends and the proxy plugins.
#pragma once

#include <github.com/containerd/containerd/api/types/descriptor.pb.h>
#include <github.com/containerd/containerd/api/types/mount.pb.h>

#include <vector>

#include "content/content.h"
#include "mount/mount.h"

namespace ctrd::protobuf {

template <typename RepeatedMounts>
void to_proto(const std::vector<mount::Mount>& mounts, RepeatedMounts* out) {
  for (const auto& m : mounts) {
    auto* pm = out->Add();
    pm->set_type(m.type);
    pm->set_source(m.source);
    pm->set_target(m.target);
    for (const auto& o : m.options) pm->add_options(o);
  }
}

template <typename RepeatedMounts>
std::vector<mount::Mount> from_proto(const RepeatedMounts& in) {
  std::vector<mount::Mount> mounts;
  for (const auto& pm : in) {
    mounts.push_back({pm.type(), pm.source(), pm.target(), {pm.options().begin(), pm.options().end()}});
  }
  return mounts;
}

inline content::Descriptor from_proto(const containerd::types::Descriptor& d) {
  return {d.media_type(), d.digest(), d.size(), {d.annotations().begin(), d.annotations().end()}};
}

inline void to_proto(const content::Descriptor& d, containerd::types::Descriptor* out) {
  out->set_media_type(d.media_type);
  out->set_digest(d.digest);
  out->set_size(d.size);
  out->mutable_annotations()->insert(d.annotations.begin(), d.annotations.end());
}

}  // namespace ctrd::protobuf
