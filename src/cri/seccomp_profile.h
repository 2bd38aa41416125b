// cri/seccomp_profile: the "runtime/default" seccomp profile the CRI plugin
// gives a container that asks for it, as containerd 1.6 builds it: an allow
// list of the syscalls ordinary programs need (everything else fails with
// EPERM), a few personality() and clone() argument rules, and extra syscalls
// for each capability the container holds (mount with CAP_SYS_ADMIN, reboot
// with CAP_SYS_BOOT, ...), so that granting a capability also lets its
// syscalls through. Also the loader for a "localhost/<path>" profile file.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "errdefs/errdefs.h"

namespace ctrd::cri {

// The default profile, as an OCI LinuxSeccomp object for this host's
// architecture. `capabilities` is the container's bounding set
// (process.capabilities.bounding of its final spec).
nlohmann::json default_seccomp_profile(const std::vector<std::string>& capabilities);

// Parses a seccomp profile file's contents, as containerd decodes one into an
// OCI LinuxSeccomp: the OCI fields are kept (a Docker-format profile has the
// same shape), anything else — Docker's archMap, comments, includes — is
// dropped. InvalidArgument if it is not a JSON object or a field has the
// wrong type.
errdefs::StatusOr<nlohmann::json> parse_seccomp_profile(const std::string& contents);

}  // namespace ctrd::cri
