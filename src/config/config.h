// config: the daemon's configuration file, containerd's shape (versions 1 and 2).
//
// `load` reads a TOML file and its `imports` (merged in order: later files
// override earlier ones, and a plugin's section is replaced whole), decodes the
// server's own keys into ServerConfig and keeps each `[plugins."<uri>"]` table
// (`[plugins.<id>]` in version 1) for the plugin that owns it. Without a file the
// built-in defaults apply.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/binder.h"
#include "errdefs/errdefs.h"

namespace ctrd::config {

inline constexpr std::string_view kDefaultConfigPath = "/etc/ctrd/config.toml";
inline constexpr std::string_view kDefaultRoot = "/var/lib/ctrd";
inline constexpr std::string_view kDefaultState = "/run/ctrd";
inline constexpr std::string_view kDefaultAddress = "/run/ctrd/ctrd.sock";
inline constexpr int32_t kDefaultMaxMessageSize = 16 << 20;

struct GrpcConfig {
  std::string address{kDefaultAddress};
  std::string tcp_address;
  std::string tcp_tls_ca;
  std::string tcp_tls_cert;
  std::string tcp_tls_key;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t max_recv_message_size = kDefaultMaxMessageSize;
  int32_t max_send_message_size = kDefaultMaxMessageSize;
  // Threads for calls that block (task calls to shims, layer apply and diff);
  // more such calls wait in a queue. Not a containerd key: it has no bound.
  int32_t blocking_threads = 64;
  void bind(Binder& b);
};

struct TtrpcConfig {
  std::string address;  // empty: <grpc address>.ttrpc
  uint32_t uid = 0;
  uint32_t gid = 0;
  void bind(Binder& b);
};

struct DebugConfig {
  std::string address;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string level;
  std::string format;
  void bind(Binder& b);
};

struct MetricsConfig {
  std::string address;
  bool grpc_histogram = false;
  void bind(Binder& b);
};

struct CgroupConfig {
  std::string path;
  void bind(Binder& b);
};

// An external plugin reached over gRPC on a unix socket (`[proxy_plugins.<name>]`).
struct ProxyPlugin {
  std::string type;     // "snapshot", "content" or "diff" (or the full plugin type)
  std::string address;  // unix socket path
  void bind(Binder& b);
};

// An external program that turns layers of the `accepts` media types into
// `returns` (`[stream_processors."<id>"]`, e.g. ocicrypt's decoder).
struct StreamProcessorConfig {
  std::vector<std::string> accepts;
  std::string returns;
  std::string path;  // absolute, or looked up on PATH
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V", added to the daemon's environment
  void bind(Binder& b);
};

struct ServerConfig {
  int64_t version = 2;
  std::string root{kDefaultRoot};
  std::string state{kDefaultState};
  std::string temp;
  std::string plugin_dir;
  std::vector<std::string> imports;
  std::vector<std::string> disabled_plugins;
  std::vector<std::string> required_plugins;
  int32_t oom_score = 0;
  GrpcConfig grpc;
  TtrpcConfig ttrpc;
  DebugConfig debug;
  MetricsConfig metrics;
  CgroupConfig cgroup;
  // By name; decoded apart from bind() (the Binder has no map of tables).
  std::map<std::string, ProxyPlugin> proxy_plugins;
  // By id; decoded apart from bind() (the Binder has no map of tables).
  std::map<std::string, StreamProcessorConfig> stream_processors;
  // Go duration strings keyed by timeout name, e.g. "io.containerd.timeout.shim.cleanup".
  std::map<std::string, std::string> timeouts{{"io.containerd.timeout.shim.cleanup", "5s"},
                                              {"io.containerd.timeout.shim.load", "5s"},
                                              {"io.containerd.timeout.shim.shutdown", "3s"},
                                              {"io.containerd.timeout.task.state", "2s"}};

  void bind(Binder& b);
  std::string ttrpc_address() const {
    return ttrpc.address.empty() ? grpc.address + ".ttrpc" : ttrpc.address;
  }
};

struct LoadedConfig {
  ServerConfig server;
  // The raw `plugins` table: keyed by URI (version 2) or by id (version 1).
  std::shared_ptr<toml::table> plugins = std::make_shared<toml::table>();
  std::vector<std::string> files;     // every file read, main file first
  std::vector<std::string> warnings;  // unknown keys and the like

  // The section for a plugin, or null.
  const toml::table* plugin_section(std::string_view type, std::string_view id) const;
  // The key a plugin's section has in this config's version.
  std::string plugin_key(std::string_view type, std::string_view id) const;
};

// Loads `path` and its imports. A missing file is an error only when `must_exist`.
// Malformed TOML is InvalidArgument with file:line:column; a wrong type or a bad
// duration names the key's full path.
errdefs::StatusOr<LoadedConfig> load(const std::string& path, bool must_exist);

// Parses TOML text (used by load and tests); `source` names it in messages.
errdefs::StatusOr<toml::table> parse(std::string_view text, std::string_view source);

// Decodes a merged table into a LoadedConfig (no imports processed).
errdefs::StatusOr<LoadedConfig> decode(toml::table table);

}  // namespace ctrd::config
