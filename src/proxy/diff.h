// proxy/diff: a differ served by another process — a diff::Differ that
// forwards Apply and Diff over containerd.services.diff.v1.Diff, passing the
// request's namespace (and lease) as containerd's headers.
#pragma once

#include <memory>

#include "diff/diff.h"
#include "proxy/channel.h"

namespace ctrd::proxy {

std::shared_ptr<diff::Differ> new_differ(std::shared_ptr<Connection> connection);

}  // namespace ctrd::proxy
