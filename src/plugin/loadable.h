// plugin/loadable: the one header a plugin built outside ctrd includes. A
// loadable plugin is a shared object in the daemon's `plugin_dir` that
// registers its plugins through the same plugin::Registry as the built-ins:
//
//   #include <plugin/loadable.h>
//
//   CTRD_PLUGIN_ENTRY(registry) {
//     registry.register_plugin({.type = std::string(ctrd::plugin::type::kInternal), .id = "example",
//                               .init = [](ctrd::plugin::InitContext& ic) -> ... { ... }});
//   }
//
// The macro defines the ABI stamp (plugin/abi.h) in its own ELF section, which
// the daemon checks before it dlopens the file, and the entry point it calls
// afterwards. Do no work in static initializers: they run at dlopen, before the
// daemon has decided anything about the plugin beyond its stamp. Build with
// ctrd_add_plugin() from `find_package(ctrd)`, which sets the flags the stamp
// expects and hides every other symbol of the plugin.
#pragma once

#include "plugin/abi.h"
#include "plugin/plugin.h"

#define CTRD_PLUGIN_EXPORT __attribute__((visibility("default")))

// Defines only the stamp: for a plugin split over several files, in exactly one
// of them (CTRD_PLUGIN_ENTRY includes it).
#define CTRD_PLUGIN_ABI_STAMP_DEFINITION                                                \
  extern "C" CTRD_PLUGIN_EXPORT __attribute__((used, section(CTRD_PLUGIN_ABI_SECTION))) \
  const char ctrd_plugin_abi_stamp[] = CTRD_PLUGIN_ABI_STAMP

// Defines the stamp and opens the entry point's definition. The daemon calls it
// once, after the stamp matched, and adds what it registered to the built-ins
// unless something was invalid or already taken (then nothing).
#define CTRD_PLUGIN_ENTRY(registry) \
  CTRD_PLUGIN_ABI_STAMP_DEFINITION; \
  extern "C" CTRD_PLUGIN_EXPORT void ctrd_register_plugins(::ctrd::plugin::Registry& registry)
