#include "os/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "os/dirs.h"

namespace ctrd::os {
namespace {

errdefs::StatusOr<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return errdefs::InvalidArgument("socket path \"" + path + "\" is empty or longer than " +
                                    std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// True when something accepts connections at `path`.
bool is_live(const sockaddr_un& addr) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return live;
}

}  // namespace

errdefs::Status prepare_unix_socket(const std::string& path) {
  CTRD_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(path));
  CTRD_RETURN_IF_ERROR(os::create_parents(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errdefs::Status::Ok();
  if (!S_ISSOCK(st.st_mode)) {
    return errdefs::FailedPrecondition(path + " exists and is not a socket; refusing to replace it");
  }
  if (is_live(addr)) {
    return errdefs::FailedPrecondition("another daemon is already serving on " + path +
                                       "; stop it or choose another address");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return errdefs::FromErrno(errno, "remove stale socket " + path);
  }
  return errdefs::Status::Ok();
}

errdefs::Status secure_unix_socket(const std::string& path, uid_t uid, gid_t gid) {
  if (::chmod(path.c_str(), 0660) != 0) return errdefs::FromErrno(errno, "chmod " + path);
  if (::chown(path.c_str(), uid, gid) != 0) return errdefs::FromErrno(errno, "chown " + path);
  return errdefs::Status::Ok();
}

errdefs::StatusOr<std::unique_ptr<UnixListener>> UnixListener::listen(const std::string& path, uid_t uid,
                                                                      gid_t gid) {
  CTRD_RETURN_IF_ERROR(prepare_unix_socket(path));
  CTRD_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errdefs::FromErrno(errno, "socket");
  std::unique_ptr<UnixListener> l(new UnixListener(fd, path));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    l->path_.clear();  // not ours to unlink
    return errdefs::FromErrno(errno, "bind " + path);
  }
  if (::listen(fd, 128) != 0) return errdefs::FromErrno(errno, "listen " + path);
  CTRD_RETURN_IF_ERROR(secure_unix_socket(path, uid, gid));
  return l;
}

UnixListener::~UnixListener() {
  if (fd_ >= 0) ::close(fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

}  // namespace ctrd::os
