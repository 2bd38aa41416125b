#include "config/config.h"

#include <glob.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace ctrd::config {
namespace {

using errdefs::InvalidArgument;

// Merges `from` onto `into`: tables merge key by key, anything else replaces,
// and each plugin's section is replaced whole (as containerd merges imports).
void merge(toml::table& into, const toml::table& from, bool plugins_level = false) {
  for (const auto& [key, node] : from) {
    auto* existing = into.get(key.str());
    if (!plugins_level && key.str() == "plugins" && existing && existing->is_table() && node.is_table()) {
      merge(*existing->as_table(), *node.as_table(), /*plugins_level=*/true);
      continue;
    }
    if (!plugins_level && existing && existing->is_table() && node.is_table()) {
      merge(*existing->as_table(), *node.as_table());
      continue;
    }
    into.insert_or_assign(key.str(), node);
  }
}

errdefs::StatusOr<std::vector<std::string>> expand_import(const std::string& pattern,
                                                          const std::string& base_dir) {
  std::string p = pattern;
  if (!p.empty() && p.front() != '/') p = base_dir + "/" + p;
  glob_t g{};
  int rc = ::glob(p.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH) return InvalidArgument("imports: bad pattern \"" + pattern + "\"");
  return out;
}

errdefs::StatusOr<toml::table> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errdefs::FromErrno(errno, "read config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

// The `[<key>.<name>]` tables (proxy_plugins, stream_processors), each
// decoded as T into `into` and taken out of `keys`.
template <typename T>
errdefs::Status decode_named_tables(toml::table& keys, const std::string& key, std::map<std::string, T>& into,
                                    LoadedConfig& out) {
  const auto* node = keys.get(key);
  if (node == nullptr) return errdefs::Status::Ok();
  if (!node->is_table()) return InvalidArgument(key + ": expected table");
  for (const auto& [name, entry] : *node->as_table()) {
    const std::string path = key + "." + path_key(name.str());
    if (!entry.is_table()) return InvalidArgument(path + ": expected table");
    T value;
    auto report = decode_into(*entry.as_table(), path, value);
    if (!report.error.ok()) return report.error;
    for (auto& k : report.unknown_keys) out.warnings.push_back("unknown key " + k);
    into.emplace(name.str(), std::move(value));
  }
  keys.erase(key);
  return errdefs::Status::Ok();
}

}  // namespace

void StreamProcessorConfig::bind(Binder& b) {
  b.field("accepts", accepts);
  b.field("returns", returns);
  b.field("path", path);
  b.field("args", args);
  b.field("env", env);
}

void ProxyPlugin::bind(Binder& b) {
  b.field("type", type);
  b.field("address", address);
}

void GrpcConfig::bind(Binder& b) {
  b.field("address", address);
  b.field("tcp_address", tcp_address);
  b.field("tcp_tls_ca", tcp_tls_ca);
  b.field("tcp_tls_cert", tcp_tls_cert);
  b.field("tcp_tls_key", tcp_tls_key);
  b.field("uid", uid);
  b.field("gid", gid);
  b.field("max_recv_message_size", max_recv_message_size);
  b.field("max_send_message_size", max_send_message_size);
  b.field("blocking_threads", blocking_threads);
}

void TtrpcConfig::bind(Binder& b) {
  b.field("address", address);
  b.field("uid", uid);
  b.field("gid", gid);
}

void DebugConfig::bind(Binder& b) {
  b.field("address", address);
  b.field("uid", uid);
  b.field("gid", gid);
  b.field("level", level);
  b.field("format", format);
}

void MetricsConfig::bind(Binder& b) {
  b.field("address", address);
  b.field("grpc_histogram", grpc_histogram);
}

void CgroupConfig::bind(Binder& b) { b.field("path", path); }

void ServerConfig::bind(Binder& b) {
  b.field("version", version);
  b.field("root", root);
  b.field("state", state);
  b.field("temp", temp);
  b.field("plugin_dir", plugin_dir);
  b.field("imports", imports);
  b.field("disabled_plugins", disabled_plugins);
  b.field("required_plugins", required_plugins);
  b.field("oom_score", oom_score);
  b.section("grpc", grpc);
  b.section("ttrpc", ttrpc);
  b.section("debug", debug);
  b.section("metrics", metrics);
  b.section("cgroup", cgroup);
  b.field("timeouts", timeouts);
}

std::string LoadedConfig::plugin_key(std::string_view type, std::string_view id) const {
  if (server.version >= 2) return std::string(type) + "." + std::string(id);
  return std::string(id);
}

const toml::table* LoadedConfig::plugin_section(std::string_view type, std::string_view id) const {
  const auto* n = plugins->get(plugin_key(type, id));
  return n ? n->as_table() : nullptr;
}

errdefs::StatusOr<toml::table> parse(std::string_view text, std::string_view source) {
  // toml++ is built with exceptions here; they stop at this function.
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& err) {
    return InvalidArgument(std::string(source) + ":" + std::to_string(err.source().begin.line) + ":" +
                           std::to_string(err.source().begin.column) + ": " + std::string(err.description()));
  }
}

errdefs::StatusOr<LoadedConfig> decode(toml::table table) {
  LoadedConfig out;
  if (auto* plugins = table.get("plugins")) {
    if (!plugins->is_table()) return InvalidArgument("plugins: expected table");
    *out.plugins = *plugins->as_table();
  }
  toml::table server_keys = table;
  server_keys.erase("plugins");
  CTRD_RETURN_IF_ERROR(decode_named_tables(server_keys, "proxy_plugins", out.server.proxy_plugins, out));
  CTRD_RETURN_IF_ERROR(
      decode_named_tables(server_keys, "stream_processors", out.server.stream_processors, out));
  auto report = decode_into(server_keys, "", out.server);
  if (!report.error.ok()) return report.error;
  for (auto& k : report.unknown_keys) out.warnings.push_back("unknown key " + k);
  if (out.server.version < 1 || out.server.version > 2) {
    return InvalidArgument("version: unsupported config version " + std::to_string(out.server.version) +
                           " (want 1 or 2)");
  }
  for (const auto& [name, value] : out.server.timeouts) {
    auto d = parse_duration(value);
    if (!d.ok()) return InvalidArgument("timeouts." + path_key(name) + ": " + d.status().message());
  }
  return out;
}

errdefs::StatusOr<LoadedConfig> load(const std::string& path, bool must_exist) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (must_exist) return errdefs::NotFound("config file " + path + " does not exist");
    return decode(toml::table{});
  }
  CTRD_ASSIGN_OR_RETURN(toml::table merged, read_file(path));
  std::vector<std::string> files{path};

  // Imports are read once each, in the order given, relative to the main file.
  std::vector<std::string> patterns;
  if (auto* imports = merged.get_as<toml::array>("imports")) {
    for (const auto& el : *imports) {
      if (!el.is_string()) return InvalidArgument(path + ": imports: expected array of strings");
      patterns.push_back(*el.value<std::string>());
    }
  }
  const std::string base_dir = std::filesystem::path(path).parent_path().string();
  std::set<std::string> seen{std::filesystem::weakly_canonical(path, ec).string()};
  for (const auto& pattern : patterns) {
    CTRD_ASSIGN_OR_RETURN(auto matches, expand_import(pattern, base_dir));
    for (const auto& file : matches) {
      if (!seen.insert(std::filesystem::weakly_canonical(file, ec).string()).second) continue;
      CTRD_ASSIGN_OR_RETURN(toml::table imported, read_file(file));
      imported.erase("imports");  // containerd does not follow nested imports
      merge(merged, imported);
      files.push_back(file);
    }
  }
  CTRD_ASSIGN_OR_RETURN(LoadedConfig out, decode(std::move(merged)));
  out.files = std::move(files);
  return out;
}

}  // namespace ctrd::config
