// proxy/snapshotter: a snapshotter served by another process — a
// snapshots::Snapshotter that forwards each call over
// containerd.services.snapshots.v1.Snapshots, naming itself in each request's
// `snapshotter` field as containerd's proxy does.
#pragma once

#include <memory>
#include <string>

#include "proxy/channel.h"
#include "snapshots/snapshotter.h"

namespace ctrd::proxy {

// `connection` reaches the plugin; `name` goes into every request.
std::shared_ptr<snapshots::Snapshotter> new_snapshotter(std::shared_ptr<Connection> connection,
                                                        std::string name);

}  // namespace ctrd::proxy
