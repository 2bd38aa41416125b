// remotes/hosts: which endpoints serve a registry host, and how to talk to
// each, as containerd 1.6 configures them:
//
// - `config_path` (CRI's registry.config_path): a directory (or ':'-separated
//   list of directories) with one folder per registry host ("host_port_" for
//   "host:port", then "host", then "_default") holding hosts.toml: `server`
//   and the `[host."<url>"]` tables, tried in file order before `server`,
//   each with capabilities, skip_verify, ca, client, header, override_path.
//   A folder without hosts.toml contributes Docker-style certificate files
//   (*.crt CAs, *.cert/*.key client pairs).
// - The older CRI forms, used when `config_path` is empty: registry.mirrors
//   (`endpoint` lists, "*" for any host) and registry.configs (per-endpoint
//   `auth` and `tls`). Credentials of registry.configs apply in both forms,
//   as in containerd's CRI plugin.
//
// With nothing configured a host is served by https://<host>/v2 (docker.io
// by registry-1.docker.io), and localhost/loopback by plain http.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::remotes {

enum Capability : unsigned {
  kCapabilityPull = 1,     // fetch blobs and manifests by digest
  kCapabilityResolve = 2,  // turn a tag into a digest
  kCapabilityPush = 4,
};
inline constexpr unsigned kAllCapabilities = kCapabilityPull | kCapabilityResolve | kCapabilityPush;

// A username and secret for Basic auth or a token server; both empty: anonymous.
struct Credentials {
  std::string username;
  std::string secret;
  bool empty() const { return username.empty() && secret.empty(); }
  bool operator==(const Credentials&) const = default;
};

// One endpoint to try for a registry host.
struct RegistryHost {
  std::string scheme = "https";
  std::string host;          // host[:port]
  std::string path = "/v2";  // API root
  unsigned capabilities = kAllCapabilities;
  bool skip_verify = false;
  std::vector<std::string> ca_files;  // absolute paths, added to the system's CAs
  // Client certificate and key files; an empty key means the key is in the certificate file.
  std::vector<std::pair<std::string, std::string>> client_pairs;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value; a name may repeat
  Credentials credentials;

  // "https://host/v2"
  std::string base_url() const { return scheme + "://" + host + path; }
  bool operator==(const RegistryHost&) const = default;
};

// The CRI plugin's older registry settings (cri::RegistryConfig), as a plain
// input so the CRI plugin converts its config without this module knowing it.
struct LegacyAuth {
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password"
  std::string identitytoken;
};
struct LegacyTls {
  bool insecure_skip_verify = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};
struct LegacyHostConfig {
  LegacyAuth auth;
  LegacyTls tls;
};
struct HostsConfig {
  std::string config_path;                                  // hosts.toml directories; empty: legacy forms
  std::map<std::string, std::vector<std::string>> mirrors;  // host or "*" -> endpoints
  std::map<std::string, LegacyHostConfig> configs;          // endpoint host -> auth and tls
};

// True for "localhost" and loopback IP literals, with or without a port.
bool is_localhost(std::string_view host);

// The endpoints for `host` (the domain of a reference), in the order to try
// them. InvalidArgument naming the file for a hosts.toml that does not parse
// or has keys of the wrong type or an unknown capability (containerd logs
// such a file and ignores it; a typo should not silently send pulls elsewhere).
errdefs::StatusOr<std::vector<RegistryHost>> configure_hosts(const HostsConfig& config,
                                                             std::string_view host);

// One hosts.toml, with relative certificate paths taken below `base_dir`.
// A table with no `server` gives a last entry with an empty host, which
// configure_hosts fills with the default endpoint.
errdefs::StatusOr<std::vector<RegistryHost>> parse_hosts_toml(std::string_view text,
                                                              const std::string& base_dir);

// containerd CRI's ParseAuth: username and password, else the identity token
// as the secret, else the base64 `auth` split at the first ':'.
// InvalidArgument for an `auth` that is not base64 "user:password".
errdefs::StatusOr<Credentials> parse_legacy_auth(const LegacyAuth& auth);

}  // namespace ctrd::remotes
