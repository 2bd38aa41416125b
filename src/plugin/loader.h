// plugin/loader: loads plugins built outside ctrd from shared objects in a
// directory (the config's `plugin_dir`) into a plugin::Registry.
//
// Each `*.so` is checked before any of its code can run: its ABI stamp
// (plugin/abi.h) is read from the file's `.ctrd_abi` ELF section and compared
// with the daemon's; only a match is dlopen'ed, and then its entry point
// registers into a scratch registry, so a file whose registrations are invalid
// or collide with loaded ones adds nothing. A refused file never stops the
// loading of the others; each file's outcome is reported to the caller, which
// decides what to log. Loaded objects are never unloaded: their code backs the
// registrations for the life of the process.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "plugin/plugin.h"

namespace ctrd::plugin {

// The stamp this program was compiled with: what a plugin must carry.
std::string_view daemon_abi_stamp();

// The stamp in `path`'s `.ctrd_abi` section. InvalidArgument when the file is
// not an ELF shared object for this machine, NotFound when it has no stamp.
errdefs::StatusOr<std::string> read_abi_stamp(const std::string& path);

struct LoadedFile {
  std::string path;
  // OK when the file's plugins were registered; otherwise why it was refused,
  // naming the file (and both stamps on a mismatch).
  errdefs::Status status;
  std::vector<std::string> registered;  // uris, in registration order
};

// Loads one shared object into `registry` if its stamp equals `expected_stamp`.
LoadedFile load_plugin_file(const std::string& path, Registry& registry,
                            std::string_view expected_stamp = daemon_abi_stamp());

// Loads every `*.so` directly in `dir` (regular files, by name order). A
// missing directory has nothing to load, as in containerd; one that cannot be
// listed is an error.
errdefs::StatusOr<std::vector<LoadedFile>> load_plugin_dir(
    const std::string& dir, Registry& registry, std::string_view expected_stamp = daemon_abi_stamp());

}  // namespace ctrd::plugin
