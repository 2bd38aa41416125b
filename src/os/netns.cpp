#include "os/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

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

}  // namespace ctrd::os
