// os/netns: a network namespace bound to a file, so that it lives as long
// as the file is mounted, whatever process runs in it — what a pod's
// sandbox needs before any of its processes exists (CNI sets it up, then
// runc joins it by path). Created on a thread of its own that unshares its
// network namespace and dies, so no thread of the daemon ever changes
// namespace.
#pragma once

#include <cstdint>
#include <string>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"

namespace ctrd::os {

class NetNs {
 public:
  // A new namespace bound to `path` (created; its directory too, 0711).
  // AlreadyExists when something is mounted there.
  static errdefs::StatusOr<NetNs> create(const std::string& path);
  // The namespace already bound to `path` (after a daemon restart).
  static NetNs at(std::string path) { return NetNs(std::move(path)); }

  const std::string& path() const { return path_; }
  // Whether `path` still holds a namespace.
  bool bound() const;
  // Unbinds and removes the file; Ok when it is gone already. The namespace
  // itself ends with its last process.
  errdefs::Status remove() const;

  // A TCP connection to `port` on the namespace's loopback (127.0.0.1, then
  // ::1), made on a thread of its own that joins the namespace and dies: the
  // socket stays in the namespace, no daemon thread changes its own.
  errdefs::StatusOr<UniqueFd> connect_loopback(uint16_t port) const;

 private:
  explicit NetNs(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The same in the daemon's own namespace (a pod on the host's network).
errdefs::StatusOr<UniqueFd> connect_host_loopback(uint16_t port);

}  // namespace ctrd::os
