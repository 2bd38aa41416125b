#include "cmd/ctrd/systemd.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "os/unique_fd.h"

namespace ctrd::cmd {

bool notify_service_manager(std::string_view state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || *env == '\0') return true;
  std::string path = env;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  // "@name" is a socket in the abstract namespace.
  if (path[0] == '@') path[0] = '\0';
  std::memcpy(addr.sun_path, path.data(), path.size());
  os::UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                  reinterpret_cast<const sockaddr*>(&addr), len) == static_cast<ssize_t>(state.size());
}

}  // namespace ctrd::cmd
