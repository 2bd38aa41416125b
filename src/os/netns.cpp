#include "os/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "os/dirs.h"
#include "os/unique_fd.h"

namespace ctrd::os {

errdefs::StatusOr<NetNs> NetNs::create(const std::string& path) {
  NetNs ns(path);
  if (ns.bound()) return errdefs::AlreadyExists("network namespace " + path + " already exists");
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) CTRD_RETURN_IF_ERROR(ensure_dir(dir, 0711));
  {
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!file.valid()) return errdefs::FromErrno(errno, "create " + path);
  }
  errdefs::Status bound;
  // The thread's namespace changes, then the thread ends: no other thread
  // is affected.
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      bound = errdefs::FromErrno(errno, "unshare network namespace");
      return;
    }
    const std::string self = "/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/ns/net";
    if (::mount(self.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      bound = errdefs::FromErrno(errno, "bind " + self + " to " + path);
  }).join();
  if (!bound.ok()) {
    ::unlink(path.c_str());
    return bound;
  }
  return ns;
}

bool NetNs::bound() const {
  struct statfs st {};
  return ::statfs(path_.c_str(), &st) == 0 && st.f_type == NSFS_MAGIC;
}

errdefs::Status NetNs::remove() const {
  if (::umount2(path_.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return errdefs::FromErrno(errno, "unmount " + path_);
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return errdefs::FromErrno(errno, "remove " + path_);
  return errdefs::Status::Ok();
}

namespace {

errdefs::StatusOr<UniqueFd> dial_loopback(uint16_t port) {
  int last_errno = 0;
  for (int family : {AF_INET, AF_INET6}) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      last_errno = errno;
      continue;
    }
    int rc;
    if (family == AF_INET) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } else {
      sockaddr_in6 addr{};
      addr.sin6_family = AF_INET6;
      addr.sin6_port = htons(port);
      addr.sin6_addr = in6addr_loopback;
      rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    if (rc == 0) return fd;
    last_errno = errno;
  }
  return errdefs::FromErrno(last_errno, "connect to localhost:" + std::to_string(port));
}

}  // namespace

errdefs::StatusOr<UniqueFd> NetNs::connect_loopback(uint16_t port) const {
  UniqueFd ns(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return errdefs::FromErrno(errno, "open network namespace " + path_);
  errdefs::StatusOr<UniqueFd> result = errdefs::Internal("no thread ran");
  std::thread dialer([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = errdefs::FromErrno(errno, "join network namespace " + path_);
      return;
    }
    result = dial_loopback(port);
  });
  dialer.join();
  return result;
}

errdefs::StatusOr<UniqueFd> connect_host_loopback(uint16_t port) { return dial_loopback(port); }

}  // namespace ctrd::os
