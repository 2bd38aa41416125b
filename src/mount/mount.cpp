#include "mount/mount.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "log/log.h"

namespace ctrd::mount {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

struct FlagWord {
  std::string_view word;
  bool clear;  // the word turns the flag off ("rw" clears MS_RDONLY)
  unsigned long flag;
};

// containerd's mount_linux.go table, plus the propagation words runc accepts.
constexpr FlagWord kFlagWords[] = {
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
    {"private", false, MS_PRIVATE},
    {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},
    {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},
    {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE},
    {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

constexpr unsigned long kPropagationFlags = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

struct ParsedOptions {
  unsigned long flags = 0;
  std::string data;
};

ParsedOptions parse_options(const std::vector<std::string>& options) {
  ParsedOptions parsed;
  for (const auto& option : options) {
    const FlagWord* found = nullptr;
    for (const auto& fw : kFlagWords) {
      if (fw.word == option) found = &fw;
    }
    if (found != nullptr) {
      if (found->clear) {
        parsed.flags &= ~found->flag;
      } else {
        parsed.flags |= found->flag;
      }
      continue;
    }
    if (!parsed.data.empty()) parsed.data.push_back(',');
    parsed.data.append(option);
  }
  return parsed;
}

size_t options_size(const std::vector<std::string>& options) {
  size_t size = 0;
  for (const auto& o : options) size += o.size();
  return size;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    parts.emplace_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

// The deepest directory containing the parent of every path, as components;
// each path then stays non-empty when made relative to it.
std::string common_parent(const std::vector<std::string>& paths) {
  std::vector<std::string> common;
  bool first = true;
  for (const auto& p : paths) {
    if (p.empty() || p.front() != '/') return "";
    std::vector<std::string> parts;
    for (auto& c : split(std::string_view(p).substr(1), '/')) {
      if (!c.empty()) parts.push_back(std::move(c));
    }
    if (parts.empty()) return "";
    parts.pop_back();
    if (first) {
      common = std::move(parts);
      first = false;
      continue;
    }
    size_t n = 0;
    while (n < common.size() && n < parts.size() && common[n] == parts[n]) ++n;
    common.resize(n);
  }
  std::string dir;
  for (const auto& c : common) dir += "/" + c;
  return dir;
}

// Rewrites an overlay's lowerdir/upperdir/workdir relative to their common
// parent; returns that parent, or "" when nothing can be shortened.
std::string compact_overlay_options(std::vector<std::string>& options) {
  static constexpr std::string_view kDirKeys[] = {"lowerdir=", "upperdir=", "workdir="};
  std::vector<std::string> dirs;
  for (const auto& o : options) {
    for (auto key : kDirKeys) {
      if (!o.starts_with(key)) continue;
      auto values = key == "lowerdir=" ? split(std::string_view(o).substr(key.size()), ':')
                                       : std::vector<std::string>{o.substr(key.size())};
      dirs.insert(dirs.end(), values.begin(), values.end());
    }
  }
  if (dirs.size() < 2) return "";
  std::string parent = common_parent(dirs);
  if (parent.empty()) return "";
  const std::string prefix = parent + "/";
  auto relative = [&](const std::string& dir) { return dir.substr(prefix.size()); };
  for (auto& o : options) {
    for (auto key : kDirKeys) {
      if (!o.starts_with(key)) continue;
      std::string rewritten(key);
      if (key == "lowerdir=") {
        auto lowers = split(std::string_view(o).substr(key.size()), ':');
        for (size_t i = 0; i < lowers.size(); ++i) {
          if (i > 0) rewritten.push_back(':');
          rewritten += relative(lowers[i]);
        }
      } else {
        rewritten += relative(o.substr(key.size()));
      }
      o = std::move(rewritten);
    }
  }
  return parent;
}

// mount(2) from inside `chdir_to`, in a child process so that the daemon's
// working directory (shared by all its threads) never changes.
int mount_from_dir(const std::string& chdir_to, const std::string& source, const std::string& target,
                   const std::string& type, unsigned long flags, const std::string& data) {
  // Everything the child touches is prepared here: after fork only
  // async-signal-safe calls are allowed.
  const char* dir = chdir_to.c_str();
  const char* src = source.c_str();
  const char* tgt = target.c_str();
  const char* fstype = type.c_str();
  const char* opts = data.c_str();
  pid_t pid = ::fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    if (::chdir(dir) != 0) ::_exit(errno);
    if (::mount(src, tgt, fstype, flags, opts) != 0) ::_exit(errno);
    ::_exit(0);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return errno;
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  return EIO;  // killed by a signal
}

std::string join_target(const std::string& target, const std::string& sub) {
  if (sub.empty()) return target;
  return target + "/" + (sub.front() == '/' ? sub.substr(1) : sub);
}

Status mount_one(const Mount& m, const std::string& target) {
  std::vector<std::string> options = m.options;
  std::string chdir_to;
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (m.type == "overlay" && options_size(options) >= page - 512) chdir_to = compact_overlay_options(options);

  ParsedOptions parsed = parse_options(options);
  if (m.type == "bind") parsed.flags |= MS_BIND;
  if (m.type == "rbind") parsed.flags |= MS_BIND | MS_REC;
  if (parsed.data.size() > page) {
    return errdefs::InvalidArgument("mount " + m.type + " on " + target + ": mount options are too long (" +
                                    std::to_string(parsed.data.size()) + " bytes)");
  }
  const std::string type = (parsed.flags & MS_BIND) != 0 ? std::string("none") : m.type;
  const unsigned long flags = parsed.flags & ~kPropagationFlags;
  auto context = [&] { return "mount " + m.type + " " + m.source + " on " + target; };

  if ((parsed.flags & MS_REMOUNT) == 0 || !parsed.data.empty()) {
    if (chdir_to.empty()) {
      if (::mount(m.source.c_str(), target.c_str(), type.c_str(), flags, parsed.data.c_str()) != 0) {
        return errdefs::FromErrno(errno, context());
      }
    } else {
      // The child resolves `target` from another directory: make it absolute.
      std::error_code ec;
      std::string absolute = std::filesystem::absolute(target, ec).string();
      if (ec) return errdefs::FromErrno(ec.value(), context());
      if (int err = mount_from_dir(chdir_to, m.source, absolute, type, flags, parsed.data); err != 0) {
        return errdefs::FromErrno(err, context() + " (from " + chdir_to + ")");
      }
    }
  }
  if ((parsed.flags & kPropagationFlags) != 0) {
    const unsigned long propagation = parsed.flags & (kPropagationFlags | MS_REC | MS_SILENT);
    if (::mount("", target.c_str(), "", propagation, "") != 0) {
      Status s = errdefs::FromErrno(errno, "set propagation of " + target);
      (void)unmount_all(target);
      return s;
    }
  }
  // A bind mount ignores MS_RDONLY: read-only takes a second, remounting call.
  if ((flags & (MS_BIND | MS_RDONLY)) == (MS_BIND | MS_RDONLY)) {
    if (::mount("", target.c_str(), "", flags | MS_REMOUNT, "") != 0) {
      Status s = errdefs::FromErrno(errno, "remount " + target + " read-only");
      (void)unmount_all(target);
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace

Status mount_all(const std::vector<Mount>& mounts, const std::string& target) {
  std::vector<std::string> mounted;
  for (const auto& m : mounts) {
    std::string where = join_target(target, m.target);
    Status s = mount_one(m, where);
    if (!s.ok()) {
      for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) {
        if (Status u = unmount_all(*it); !u.ok())
          log::warn("unmount after failed mount", {{"error", u.to_string()}});
      }
      return s;
    }
    mounted.push_back(std::move(where));
  }
  return Status::Ok();
}

Status unmount_all(const std::string& target) {
  if (target.empty()) return Status::Ok();
  constexpr int kBusyRetries = 10;
  constexpr auto kBusyPause = std::chrono::milliseconds(20);
  int busy = 0;
  // Bounded: each round removes one mount, and a mount table is finite.
  for (int round = 0; round < 10000; ++round) {
    int flags = busy >= kBusyRetries ? MNT_DETACH : 0;
    if (::umount2(target.c_str(), flags) == 0) {
      busy = 0;
      continue;
    }
    switch (errno) {
      case EINVAL:  // nothing (more) mounted there
      case ENOENT:
        return Status::Ok();
      case EBUSY:
        ++busy;
        std::this_thread::sleep_for(kBusyPause);
        continue;
      default:
        return errdefs::FromErrno(errno, "unmount " + target);
    }
  }
  return errdefs::Internal("unmount " + target + ": mounts keep reappearing");
}

std::string option_value(const Mount& m, std::string_view key) {
  for (const auto& o : m.options) {
    if (o.size() > key.size() && o.starts_with(key) && o[key.size()] == '=') return o.substr(key.size() + 1);
  }
  return "";
}

std::vector<std::string> overlay_lowerdirs(const Mount& m) {
  std::string lower = option_value(m, "lowerdir");
  if (lower.empty()) return {};
  return split(lower, ':');
}

// --- TempMount ---

StatusOr<TempMount> TempMount::create(const std::string& parent, const std::vector<Mount>& mounts) {
  std::string pattern = parent + "/ctrd-mount-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return errdefs::FromErrno(errno, "create temp mount dir in " + parent);
  TempMount tm(std::move(pattern));
  if (Status s = mount_all(mounts, tm.path_); !s.ok()) {
    ::rmdir(tm.path_.c_str());
    tm.path_.clear();
    return s;
  }
  return tm;
}

TempMount::TempMount(TempMount&& other) noexcept : path_(std::exchange(other.path_, std::string())) {}

TempMount::~TempMount() {
  if (path_.empty()) return;
  if (Status s = release(); !s.ok()) {
    log::warn("releasing temp mount lazily", {{"path", path_}, {"error", s.to_string()}});
    ::umount2(path_.c_str(), MNT_DETACH);
    ::rmdir(path_.c_str());
  }
}

Status TempMount::release() {
  if (path_.empty()) return Status::Ok();
  CTRD_RETURN_IF_ERROR(unmount_all(path_));
  if (::rmdir(path_.c_str()) != 0 && errno != ENOENT) return errdefs::FromErrno(errno, "remove " + path_);
  path_.clear();
  return Status::Ok();
}

}  // namespace ctrd::mount
