// os/unix_socket.h: unix socket chores shared by the daemon's listeners and the proxy servers —
// refusing to start over a live daemon, replacing a stale socket file, and
// setting the socket's owner and mode.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "errdefs/errdefs.h"

namespace ctrd::os {

// Creates the socket's directory; fails with a clear message if a daemon is
// already listening at `path`; removes a stale socket file.
errdefs::Status prepare_unix_socket(const std::string& path);

// chmod 0660 and chown uid:gid, as containerd does for its sockets.
errdefs::Status secure_unix_socket(const std::string& path, uid_t uid, gid_t gid);

// A listening unix socket owned by the server: closed and unlinked on destruction.
class UnixListener {
 public:
  static errdefs::StatusOr<std::unique_ptr<UnixListener>> listen(const std::string& path, uid_t uid,
                                                                 gid_t gid);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  UnixListener(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace ctrd::os
