#include "cri/seccomp_profile.h"

#include <sys/utsname.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

namespace ctrd::cri {
namespace {

using nlohmann::json;

constexpr int kErrnoEnosys = 38;

// Syscalls any container may make, whatever its capabilities. Names that do
// not exist on an architecture are skipped by the runtime, so one list serves
// 32- and 64-bit ABIs alike.
const std::vector<std::string>& always_allowed() {
  static const std::vector<std::string> names = {
      "accept",
      "accept4",
      "access",
      "adjtimex",
      "alarm",
      "bind",
      "brk",
      "capget",
      "capset",
      "chdir",
      "chmod",
      "chown",
      "chown32",
      "clock_adjtime",
      "clock_adjtime64",
      "clock_getres",
      "clock_getres_time64",
      "clock_gettime",
      "clock_gettime64",
      "clock_nanosleep",
      "clock_nanosleep_time64",
      "close",
      "close_range",
      "connect",
      "copy_file_range",
      "creat",
      "dup",
      "dup2",
      "dup3",
      "epoll_create",
      "epoll_create1",
      "epoll_ctl",
      "epoll_ctl_old",
      "epoll_pwait",
      "epoll_pwait2",
      "epoll_wait",
      "epoll_wait_old",
      "eventfd",
      "eventfd2",
      "execve",
      "execveat",
      "exit",
      "exit_group",
      "faccessat",
      "faccessat2",
      "fadvise64",
      "fadvise64_64",
      "fallocate",
      "fanotify_mark",
      "fchdir",
      "fchmod",
      "fchmodat",
      "fchown",
      "fchown32",
      "fchownat",
      "fcntl",
      "fcntl64",
      "fdatasync",
      "fgetxattr",
      "flistxattr",
      "flock",
      "fork",
      "fremovexattr",
      "fsetxattr",
      "fstat",
      "fstat64",
      "fstatat64",
      "fstatfs",
      "fstatfs64",
      "fsync",
      "ftruncate",
      "ftruncate64",
      "futex",
      "futex_time64",
      "futex_waitv",
      "futimesat",
      "getcpu",
      "getcwd",
      "getdents",
      "getdents64",
      "getegid",
      "getegid32",
      "geteuid",
      "geteuid32",
      "getgid",
      "getgid32",
      "getgroups",
      "getgroups32",
      "getitimer",
      "getpeername",
      "getpgid",
      "getpgrp",
      "getpid",
      "getppid",
      "getpriority",
      "getrandom",
      "getresgid",
      "getresgid32",
      "getresuid",
      "getresuid32",
      "getrlimit",
      "get_robust_list",
      "getrusage",
      "getsid",
      "getsockname",
      "getsockopt",
      "get_thread_area",
      "gettid",
      "gettimeofday",
      "getuid",
      "getuid32",
      "getxattr",
      "inotify_add_watch",
      "inotify_init",
      "inotify_init1",
      "inotify_rm_watch",
      "io_cancel",
      "ioctl",
      "io_destroy",
      "io_getevents",
      "io_pgetevents",
      "io_pgetevents_time64",
      "ioprio_get",
      "ioprio_set",
      "io_setup",
      "io_submit",
      "io_uring_enter",
      "io_uring_register",
      "io_uring_setup",
      "ipc",
      "kill",
      "landlock_add_rule",
      "landlock_create_ruleset",
      "landlock_restrict_self",
      "lchown",
      "lchown32",
      "lgetxattr",
      "link",
      "linkat",
      "listen",
      "listxattr",
      "llistxattr",
      "_llseek",
      "lremovexattr",
      "lseek",
      "lsetxattr",
      "lstat",
      "lstat64",
      "madvise",
      "membarrier",
      "memfd_create",
      "memfd_secret",
      "mincore",
      "mkdir",
      "mkdirat",
      "mknod",
      "mknodat",
      "mlock",
      "mlock2",
      "mlockall",
      "mmap",
      "mmap2",
      "mprotect",
      "mq_getsetattr",
      "mq_notify",
      "mq_open",
      "mq_timedreceive",
      "mq_timedreceive_time64",
      "mq_timedsend",
      "mq_timedsend_time64",
      "mq_unlink",
      "mremap",
      "msgctl",
      "msgget",
      "msgrcv",
      "msgsnd",
      "msync",
      "munlock",
      "munlockall",
      "munmap",
      "nanosleep",
      "newfstatat",
      "_newselect",
      "open",
      "openat",
      "openat2",
      "pause",
      "pidfd_open",
      "pidfd_send_signal",
      "pipe",
      "pipe2",
      "pkey_alloc",
      "pkey_free",
      "pkey_mprotect",
      "poll",
      "ppoll",
      "ppoll_time64",
      "prctl",
      "pread64",
      "preadv",
      "preadv2",
      "prlimit64",
      "process_mrelease",
      "pselect6",
      "pselect6_time64",
      "pwrite64",
      "pwritev",
      "pwritev2",
      "read",
      "readahead",
      "readlink",
      "readlinkat",
      "readv",
      "recv",
      "recvfrom",
      "recvmmsg",
      "recvmmsg_time64",
      "recvmsg",
      "remap_file_pages",
      "removexattr",
      "rename",
      "renameat",
      "renameat2",
      "restart_syscall",
      "rmdir",
      "rseq",
      "rt_sigaction",
      "rt_sigpending",
      "rt_sigprocmask",
      "rt_sigqueueinfo",
      "rt_sigreturn",
      "rt_sigsuspend",
      "rt_sigtimedwait",
      "rt_sigtimedwait_time64",
      "rt_tgsigqueueinfo",
      "sched_getaffinity",
      "sched_getattr",
      "sched_getparam",
      "sched_get_priority_max",
      "sched_get_priority_min",
      "sched_getscheduler",
      "sched_rr_get_interval",
      "sched_rr_get_interval_time64",
      "sched_setaffinity",
      "sched_setattr",
      "sched_setparam",
      "sched_setscheduler",
      "sched_yield",
      "seccomp",
      "select",
      "semctl",
      "semget",
      "semop",
      "semtimedop",
      "semtimedop_time64",
      "send",
      "sendfile",
      "sendfile64",
      "sendmmsg",
      "sendmsg",
      "sendto",
      "setfsgid",
      "setfsgid32",
      "setfsuid",
      "setfsuid32",
      "setgid",
      "setgid32",
      "setgroups",
      "setgroups32",
      "setitimer",
      "setpgid",
      "setpriority",
      "setregid",
      "setregid32",
      "setresgid",
      "setresgid32",
      "setresuid",
      "setresuid32",
      "setreuid",
      "setreuid32",
      "setrlimit",
      "set_robust_list",
      "setsid",
      "setsockopt",
      "set_thread_area",
      "set_tid_address",
      "setuid",
      "setuid32",
      "setxattr",
      "shmat",
      "shmctl",
      "shmdt",
      "shmget",
      "shutdown",
      "sigaltstack",
      "signalfd",
      "signalfd4",
      "sigprocmask",
      "sigreturn",
      "socket",
      "socketcall",
      "socketpair",
      "splice",
      "stat",
      "stat64",
      "statfs",
      "statfs64",
      "statx",
      "symlink",
      "symlinkat",
      "sync",
      "sync_file_range",
      "syncfs",
      "sysinfo",
      "tee",
      "tgkill",
      "time",
      "timer_create",
      "timer_delete",
      "timer_getoverrun",
      "timer_gettime",
      "timer_gettime64",
      "timer_settime",
      "timer_settime64",
      "timerfd_create",
      "timerfd_gettime",
      "timerfd_gettime64",
      "timerfd_settime",
      "timerfd_settime64",
      "times",
      "tkill",
      "truncate",
      "truncate64",
      "ugetrlimit",
      "umask",
      "uname",
      "unlink",
      "unlinkat",
      "utime",
      "utimensat",
      "utimensat_time64",
      "utimes",
      "vfork",
      "vmsplice",
      "wait4",
      "waitid",
      "waitpid",
      "write",
      "writev",
  };
  return names;
}

// The syscalls a capability exists to guard: holding it lets them through.
struct CapabilitySyscalls {
  const char* capability;
  std::vector<std::string> names;
};

const std::vector<CapabilitySyscalls>& capability_syscalls() {
  static const std::vector<CapabilitySyscalls> table = {
      {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
      {"CAP_SYS_ADMIN",
       {"bpf",
        "clone",
        "clone3",
        "fanotify_init",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "lookup_dcookie",
        "mount",
        "mount_setattr",
        "move_mount",
        "name_to_handle_at",
        "open_tree",
        "perf_event_open",
        "quotactl",
        "quotactl_fd",
        "setdomainname",
        "sethostname",
        "setns",
        "syslog",
        "umount",
        "umount2",
        "unshare"}},
      {"CAP_SYS_BOOT", {"reboot"}},
      {"CAP_SYS_CHROOT", {"chroot"}},
      {"CAP_SYS_MODULE", {"delete_module", "init_module", "finit_module"}},
      {"CAP_SYS_PACCT", {"acct"}},
      {"CAP_SYS_PTRACE",
       {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
      {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
      {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
      {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
      {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy"}},
      {"CAP_SYSLOG", {"syslog"}},
      {"CAP_BPF", {"bpf"}},
      {"CAP_PERFMON", {"perf_event_open"}},
  };
  return table;
}

json architectures() {
#if defined(__x86_64__)
  return json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"});
#elif defined(__aarch64__)
  return json::array({"SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"});
#elif defined(__s390x__)
  return json::array({"SCMP_ARCH_S390", "SCMP_ARCH_S390X"});
#elif defined(__riscv) && __riscv_xlen == 64
  return json::array({"SCMP_ARCH_RISCV64"});
#else
  return json::array();
#endif
}

// Syscalls only one architecture has, which its programs need.
std::vector<std::string> architecture_syscalls() {
#if defined(__x86_64__)
  return {"arch_prctl", "modify_ldt"};
#elif defined(__i386__)
  return {"modify_ldt"};
#elif defined(__aarch64__) || defined(__arm__)
  return {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
          "breakpoint",       "cacheflush",          "set_tls"};
#elif defined(__powerpc64__)
  return {"sync_file_range2", "swapcontext"};
#elif defined(__s390x__)
  return {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"};
#elif defined(__riscv)
  return {"riscv_flush_icache"};
#else
  return {};
#endif
}

json allow(std::vector<std::string> names) {
  return {{"names", std::move(names)}, {"action", "SCMP_ACT_ALLOW"}};
}

json allow_if_arg_equals(const char* name, unsigned index, uint64_t value) {
  json rule = allow({name});
  rule["args"] = json::array({{{"index", index}, {"value", value}, {"op", "SCMP_CMP_EQ"}}});
  return rule;
}

// Before 4.8 a seccomp filter could be bypassed with ptrace, so it is only
// allowed to everyone on kernels at least that new.
bool kernel_at_least_4_8() {
  utsname name{};
  if (uname(&name) != 0) return false;
  int major = 0;
  int minor = 0;
  if (std::sscanf(name.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 4 || (major == 4 && minor >= 8);
}

bool holds(const std::vector<std::string>& capabilities, std::string_view capability) {
  for (const std::string& c : capabilities) {
    if (c == capability) return true;
  }
  return false;
}

// Go's encoding/json, which containerd decodes profiles with, matches keys
// without regard to case; an exact match wins.
const json* find_field(const json& object, std::string_view key) {
  if (auto it = object.find(std::string(key)); it != object.end()) return &*it;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& name = it.key();
    if (name.size() != key.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(name[i])) ==
             std::tolower(static_cast<unsigned char>(key[i]));
    }
    if (same) return &*it;
  }
  return nullptr;
}

enum class FieldType { kString, kStrings, kUnsigned };

bool has_type(const json& value, FieldType type) {
  switch (type) {
    case FieldType::kString:
      return value.is_string();
    case FieldType::kUnsigned:
      return value.is_number_unsigned();
    case FieldType::kStrings:
      if (!value.is_array()) return false;
      for (const json& item : value) {
        if (!item.is_string()) return false;
      }
      return true;
  }
  return false;
}

// Copies the fields of `in` that `fields` names into a new object, checking
// their types. A null field is absent, as in Go.
errdefs::StatusOr<json> copy_fields(const json& in,
                                    const std::vector<std::pair<const char*, FieldType>>& fields,
                                    std::string_view where) {
  if (!in.is_object()) return errdefs::InvalidArgument(std::string(where) + " is not a JSON object");
  json out = json::object();
  for (const auto& [key, type] : fields) {
    const json* value = find_field(in, key);
    if (value == nullptr || value->is_null()) continue;
    if (!has_type(*value, type)) {
      return errdefs::InvalidArgument(std::string(where) + "." + key + " has the wrong type");
    }
    out[key] = *value;
  }
  return out;
}

}  // namespace

nlohmann::json default_seccomp_profile(const std::vector<std::string>& capabilities) {
  json syscalls = json::array();
  syscalls.push_back(allow(always_allowed()));
  // personality(): the default persona, its 32-bit variant (PER_LINUX32),
  // UNAME26 on either, and the query that changes nothing (0xffffffff).
  for (uint64_t persona : {0x0ULL, 0x0008ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    syscalls.push_back(allow_if_arg_equals("personality", 0, persona));
  }
  if (kernel_at_least_4_8()) syscalls.push_back(allow({"ptrace"}));
  if (auto names = architecture_syscalls(); !names.empty()) syscalls.push_back(allow(std::move(names)));

  for (const std::string& capability : capabilities) {
    for (const CapabilitySyscalls& entry : capability_syscalls()) {
      if (capability == entry.capability) syscalls.push_back(allow(entry.names));
    }
  }

  if (!holds(capabilities, "CAP_SYS_ADMIN")) {
    // Without CAP_SYS_ADMIN, clone() may not make namespaces. clone3() passes
    // its flags in memory a filter cannot read, so it fails with ENOSYS and
    // the C library falls back to clone().
    constexpr uint64_t kNamespaceFlags = 0x00020000     // CLONE_NEWNS
                                         | 0x04000000   // CLONE_NEWUTS
                                         | 0x08000000   // CLONE_NEWIPC
                                         | 0x10000000   // CLONE_NEWUSER
                                         | 0x20000000   // CLONE_NEWPID
                                         | 0x40000000   // CLONE_NEWNET
                                         | 0x02000000;  // CLONE_NEWCGROUP
#if defined(__s390x__) || defined(__s390__)
    constexpr unsigned kFlagsArg = 1;  // s390's clone takes the stack first
#else
    constexpr unsigned kFlagsArg = 0;
#endif
    json clone = allow({"clone"});
    clone["args"] = json::array(
        {{{"index", kFlagsArg}, {"value", kNamespaceFlags}, {"valueTwo", 0}, {"op", "SCMP_CMP_MASKED_EQ"}}});
    syscalls.push_back(std::move(clone));
    syscalls.push_back({{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kErrnoEnosys}});
  }

  return {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"defaultErrnoRet", 1},  // EPERM, what runc returns for SCMP_ACT_ERRNO anyway
      {"architectures", architectures()},
      {"syscalls", std::move(syscalls)},
  };
}

errdefs::StatusOr<nlohmann::json> parse_seccomp_profile(const std::string& contents) {
  json document = json::parse(contents, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return errdefs::InvalidArgument("seccomp profile is not valid JSON");
  CTRD_ASSIGN_OR_RETURN(json profile, copy_fields(document,
                                                  {{"defaultAction", FieldType::kString},
                                                   {"defaultErrnoRet", FieldType::kUnsigned},
                                                   {"architectures", FieldType::kStrings},
                                                   {"flags", FieldType::kStrings},
                                                   {"listenerPath", FieldType::kString},
                                                   {"listenerMetadata", FieldType::kString}},
                                                  "seccomp profile"));
  const json* syscalls = find_field(document, "syscalls");
  if (syscalls == nullptr || syscalls->is_null()) return profile;
  if (!syscalls->is_array()) return errdefs::InvalidArgument("seccomp profile.syscalls is not an array");
  json rules = json::array();
  for (const json& syscall : *syscalls) {
    CTRD_ASSIGN_OR_RETURN(json rule, copy_fields(syscall,
                                                 {{"names", FieldType::kStrings},
                                                  {"action", FieldType::kString},
                                                  {"errnoRet", FieldType::kUnsigned}},
                                                 "seccomp profile.syscalls[]"));
    const json* args = find_field(syscall, "args");
    if (args != nullptr && !args->is_null()) {
      if (!args->is_array())
        return errdefs::InvalidArgument("seccomp profile.syscalls[].args is not an array");
      json kept = json::array();
      for (const json& arg : *args) {
        CTRD_ASSIGN_OR_RETURN(json copy, copy_fields(arg,
                                                     {{"index", FieldType::kUnsigned},
                                                      {"value", FieldType::kUnsigned},
                                                      {"valueTwo", FieldType::kUnsigned},
                                                      {"op", FieldType::kString}},
                                                     "seccomp profile.syscalls[].args[]"));
        kept.push_back(std::move(copy));
      }
      if (!kept.empty()) rule["args"] = std::move(kept);
    }
    rules.push_back(std::move(rule));
  }
  profile["syscalls"] = std::move(rules);
  return profile;
}

}  // namespace ctrd::cri
