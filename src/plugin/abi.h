// plugin/abi: the ABI stamp that a loadable plugin (a .so in plugin_dir) and
// the daemon must agree on before any of the plugin's code may run.
//
// Plugins and ctrd exchange C++ objects (std::string, std::function, Registry,
// Status...) with no stable ABI between them, so a plugin is only safe when it
// was compiled against the same plugin-API headers by the same compiler and
// standard library, in the same configuration. The stamp spells all of that out
// in one string; the daemon compares its own (compiled from this header too)
// with the one in the plugin file's `.ctrd_abi` section, read from the ELF file
// before dlopen. A difference anywhere refuses the plugin.
#pragma once

// Any standard header defines the libstdc++ macros (_GLIBCXX_RELEASE, __GLIBCXX__).
#include <cstddef>

// Its toml++ types are part of the API, so toml++'s version is part of the ABI.
#include "config/binder.h"

// CTRD_PLUGIN_API_HASH and CTRD_PLUGIN_CTRD_VERSION, generated at ctrd's build
// time from the plugin-API headers.
#include "plugin/abi_version.h"

#define CTRD_PLUGIN_ABI_STR_(x) #x
#define CTRD_PLUGIN_ABI_STR(x) CTRD_PLUGIN_ABI_STR_(x)

#if defined(__clang__)
#define CTRD_PLUGIN_ABI_COMPILER                                         \
  "clang-" CTRD_PLUGIN_ABI_STR(__clang_major__) "." CTRD_PLUGIN_ABI_STR( \
      __clang_minor__) "." CTRD_PLUGIN_ABI_STR(__clang_patchlevel__)
#elif defined(__GNUC__)
#define CTRD_PLUGIN_ABI_COMPILER                                                                        \
  "gcc-" CTRD_PLUGIN_ABI_STR(__GNUC__) "." CTRD_PLUGIN_ABI_STR(__GNUC_MINOR__) "." CTRD_PLUGIN_ABI_STR( \
      __GNUC_PATCHLEVEL__)
#else
#error "ctrd plugins are built with GCC or Clang"
#endif

#if defined(__GLIBCXX__)
// The dual ABI switch changes std::string's and std::list's layout.
#define CTRD_PLUGIN_ABI_STDLIB                                                \
  "libstdc++-" CTRD_PLUGIN_ABI_STR(_GLIBCXX_RELEASE) "-" CTRD_PLUGIN_ABI_STR( \
      __GLIBCXX__) "-abi" CTRD_PLUGIN_ABI_STR(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define CTRD_PLUGIN_ABI_STDLIB "libc++-" CTRD_PLUGIN_ABI_STR(_LIBCPP_VERSION)
#else
#error "unknown C++ standard library"
#endif

// _GLIBCXX_DEBUG swaps the standard containers for differently laid-out ones.
#if defined(_GLIBCXX_DEBUG)
#define CTRD_PLUGIN_ABI_DEBUG ";stl-debug"
#else
#define CTRD_PLUGIN_ABI_DEBUG ""
#endif

// The stamp of whatever includes this header. A test (or a deliberate
// experiment) may force another with -DCTRD_PLUGIN_ABI_OVERRIDE="...".
#if defined(CTRD_PLUGIN_ABI_OVERRIDE)
#define CTRD_PLUGIN_ABI_STAMP CTRD_PLUGIN_ABI_OVERRIDE
#else
#define CTRD_PLUGIN_ABI_STAMP                                                                         \
  "ctrd-plugin-abi/1;ctrd=" CTRD_PLUGIN_CTRD_VERSION ";api=" CTRD_PLUGIN_API_HASH                     \
  ";cxx=" CTRD_PLUGIN_ABI_COMPILER ";stdlib=" CTRD_PLUGIN_ABI_STDLIB                                  \
  ";std=" CTRD_PLUGIN_ABI_STR(__cplusplus) ";toml++=" CTRD_PLUGIN_ABI_STR(                            \
      TOML_LIB_MAJOR) "." CTRD_PLUGIN_ABI_STR(TOML_LIB_MINOR) "." CTRD_PLUGIN_ABI_STR(TOML_LIB_PATCH) \
      CTRD_PLUGIN_ABI_DEBUG
#endif

// The ELF section and symbol that carry a plugin's stamp, and its entry point.
#define CTRD_PLUGIN_ABI_SECTION ".ctrd_abi"
#define CTRD_PLUGIN_ABI_SYMBOL "ctrd_plugin_abi_stamp"
#define CTRD_PLUGIN_ENTRY_SYMBOL "ctrd_register_plugins"
