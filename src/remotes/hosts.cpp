#include "remotes/hosts.h"

#include <arpa/inet.h>

#include <toml++/toml.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace ctrd::remotes {
namespace {

namespace fs = std::filesystem;
using errdefs::Status;
using errdefs::StatusOr;

std::string absolute_in(const std::string& path, const std::string& base_dir) {
  return fs::path(path).is_absolute() ? path : (fs::path(base_dir) / path).string();
}

// "https://host:port/some/path" -> scheme, host, path. A missing scheme is https.
struct Url {
  std::string scheme;
  std::string host;
  std::string path;
};
StatusOr<Url> parse_url(std::string text) {
  if (text.rfind("http", 0) != 0) {
    if (text.find("://") != std::string::npos) {
      return errdefs::InvalidArgument("invalid URL " + errdefs::quoted(text) +
                                      ": scheme must be http or https");
    }
    text = "https://" + text;
  }
  size_t sep = text.find("://");
  if (sep == std::string::npos) return errdefs::InvalidArgument("invalid URL " + errdefs::quoted(text));
  Url u;
  u.scheme = text.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https") {
    return errdefs::InvalidArgument("invalid URL " + errdefs::quoted(text) +
                                    ": scheme must be http or https");
  }
  std::string rest = text.substr(sep + 3);
  size_t slash = rest.find('/');
  u.host = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  if (u.host.empty()) return errdefs::InvalidArgument("invalid URL " + errdefs::quoted(text) + ": no host");
  return u;
}

// Go's path.Clean for the URL paths of hosts.toml ("/a//b/" -> "/a/b").
std::string clean_path(const std::string& p) {
  std::string cleaned = fs::path(p).lexically_normal().string();
  while (cleaned.size() > 1 && cleaned.back() == '/') cleaned.pop_back();
  return cleaned;
}

Status wrong_type(std::string_view where, std::string_view key, std::string_view want) {
  return errdefs::InvalidArgument(std::string(where) + ": " + std::string(key) + " must be " +
                                  std::string(want));
}

StatusOr<std::vector<std::string>> string_list(const toml::node& node, std::string_view where,
                                               std::string_view key) {
  std::vector<std::string> out;
  if (auto s = node.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* a = node.as_array();
  if (a == nullptr) return wrong_type(where, key, "a string or a list of strings");
  for (const toml::node& item : *a) {
    auto s = item.value<std::string>();
    if (!s) return wrong_type(where, key, "a string or a list of strings");
    out.push_back(*s);
  }
  return out;
}

// The keys hosts.toml allows for one host (and at the top level, for `server`).
Status parse_host_table(const toml::table& t, const std::string& server, const std::string& base_dir,
                        std::string_view where, RegistryHost& out) {
  bool override_path = false;
  if (const toml::node* n = t.get("override_path")) {
    auto b = n->value<bool>();
    if (!b) return wrong_type(where, "override_path", "a boolean");
    override_path = *b;
  }
  if (!server.empty()) {
    CTRD_ASSIGN_OR_RETURN(Url u, parse_url(server));
    out.scheme = u.scheme;
    out.host = u.host;
    if (!u.path.empty()) {
      out.path = clean_path(u.path);
      if (!override_path && !(out.path.size() >= 3 && out.path.ends_with("/v2"))) out.path += "/v2";
    } else {
      out.path = override_path ? "" : "/v2";
    }
  } else {
    out.host.clear();  // filled with the default endpoint by configure_hosts
  }

  if (const toml::node* n = t.get("skip_verify")) {
    auto b = n->value<bool>();
    if (!b) return wrong_type(where, "skip_verify", "a boolean");
    out.skip_verify = *b;
  }
  if (const toml::node* n = t.get("capabilities")) {
    const toml::array* a = n->as_array();
    if (a == nullptr) return wrong_type(where, "capabilities", "a list of strings");
    out.capabilities = 0;
    for (const toml::node& item : *a) {
      auto s = item.value<std::string>();
      if (!s) return wrong_type(where, "capabilities", "a list of strings");
      std::string c = *s;
      std::transform(c.begin(), c.end(), c.begin(), [](unsigned char x) { return std::tolower(x); });
      if (c == "pull") {
        out.capabilities |= kCapabilityPull;
      } else if (c == "resolve") {
        out.capabilities |= kCapabilityResolve;
      } else if (c == "push") {
        out.capabilities |= kCapabilityPush;
      } else {
        return errdefs::InvalidArgument(std::string(where) + ": unknown capability " + errdefs::quoted(*s));
      }
    }
    // containerd: an empty list means all of them, as no list does.
    if (a->empty()) out.capabilities = kAllCapabilities;
  }
  if (const toml::node* n = t.get("ca")) {
    CTRD_ASSIGN_OR_RETURN(auto files, string_list(*n, where, "ca"));
    for (const auto& f : files) out.ca_files.push_back(absolute_in(f, base_dir));
  }
  if (const toml::node* n = t.get("client")) {
    // A file with certificate and key, or a list of such files and [cert, key] pairs.
    auto bad = [&] {
      return wrong_type(where, "client", "a file, or a list of files and [cert, key] pairs");
    };
    if (auto s = n->value<std::string>()) {
      out.client_pairs.emplace_back(absolute_in(*s, base_dir), "");
    } else if (const toml::array* a = n->as_array()) {
      for (const toml::node& item : *a) {
        if (auto f = item.value<std::string>()) {
          out.client_pairs.emplace_back(absolute_in(*f, base_dir), "");
          continue;
        }
        const toml::array* pair = item.as_array();
        if (pair == nullptr || pair->size() != 2) return bad();
        auto cert = (*pair)[0].value<std::string>();
        auto key = (*pair)[1].value<std::string>();
        if (!cert || !key) return bad();
        out.client_pairs.emplace_back(absolute_in(*cert, base_dir), absolute_in(*key, base_dir));
      }
    } else {
      return bad();
    }
  }
  if (const toml::node* n = t.get("header")) {
    const toml::table* headers = n->as_table();
    if (headers == nullptr) return wrong_type(where, "header", "a table");
    for (const auto& [name, value] : *headers) {
      CTRD_ASSIGN_OR_RETURN(auto values, string_list(value, where, "header." + std::string(name.str())));
      for (auto& v : values) out.headers.emplace_back(std::string(name.str()), std::move(v));
    }
  }
  return Status::Ok();
}

// Docker's certs.d layout, for a host folder without hosts.toml.
std::vector<RegistryHost> hosts_from_cert_files(const fs::path& dir) {
  RegistryHost h;
  h.host.clear();
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (f.extension() == ".crt") h.ca_files.push_back(f.string());
    if (f.extension() == ".cert") {
      fs::path key = f;
      key.replace_extension(".key");
      h.client_pairs.emplace_back(f.string(), fs::exists(key, ec) ? key.string() : "");
    }
  }
  return {h};
}

// The folder names containerd looks for: "host_port_" for "host:port", then
// "host:port" itself, then "_default".
std::vector<std::string> host_dir_names(std::string_view host) {
  std::vector<std::string> names;
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && colon > 0) {
    names.push_back(std::string(host.substr(0, colon)) + "_" + std::string(host.substr(colon + 1)) + "_");
  }
  names.emplace_back(host);
  names.emplace_back("_default");
  return names;
}

std::string default_endpoint_host(std::string_view host) {
  return host == "docker.io" ? "registry-1.docker.io" : std::string(host);
}

std::string default_scheme(std::string_view host) { return is_localhost(host) ? "http" : "https"; }

StatusOr<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return errdefs::NotFound("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string base64_decode(std::string_view in, bool& ok) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  ok = true;
  for (char c : in) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) {
      ok = false;
      return {};
    }
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

Credentials legacy_credentials(const HostsConfig& config, const std::string& endpoint_host, Status& error) {
  auto it = config.configs.find(endpoint_host);
  if (it == config.configs.end()) return {};
  auto creds = parse_legacy_auth(it->second.auth);
  if (!creds.ok()) {
    error = creds.status().with_context("registry.configs." + errdefs::quoted(endpoint_host) + ".auth");
    return {};
  }
  return *creds;
}

StatusOr<std::vector<RegistryHost>> hosts_from_config_path(const HostsConfig& config, std::string_view host) {
  std::vector<RegistryHost> hosts;
  bool found = false;
  std::stringstream roots(config.config_path);
  for (std::string root; !found && std::getline(roots, root, ':');) {
    if (root.empty()) continue;
    for (const auto& name : host_dir_names(host)) {
      fs::path dir = fs::path(root) / name;
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) continue;
      found = true;
      fs::path file = dir / "hosts.toml";
      if (fs::exists(file, ec)) {
        CTRD_ASSIGN_OR_RETURN(std::string text, read_file(file));
        auto parsed = parse_hosts_toml(text, dir.string());
        if (!parsed.ok()) return parsed.status().with_context(file.string());
        hosts = std::move(*parsed);
      } else {
        hosts = hosts_from_cert_files(dir);
      }
      break;
    }
  }
  if (!found) hosts.emplace_back().host.clear();
  // The last entry without a host is the default endpoint for `host`.
  if (!hosts.empty() && hosts.back().host.empty()) {
    RegistryHost& h = hosts.back();
    h.host = default_endpoint_host(host);
    h.scheme = default_scheme(host);
    if (is_localhost(host)) h.skip_verify = true;
    h.path = "/v2";
    h.capabilities = kAllCapabilities;
  }
  Status error;
  for (auto& h : hosts) h.credentials = legacy_credentials(config, h.host, error);
  if (!error.ok()) return error;
  return hosts;
}

StatusOr<std::vector<RegistryHost>> hosts_from_mirrors(const HostsConfig& config, std::string_view host) {
  std::vector<std::string> endpoints;
  if (auto it = config.mirrors.find(std::string(host)); it != config.mirrors.end()) {
    endpoints = it->second;
  } else if (auto any = config.mirrors.find("*"); any != config.mirrors.end()) {
    endpoints = any->second;
  }
  std::vector<RegistryHost> hosts;
  bool has_default = false;
  for (const auto& endpoint : endpoints) {
    std::string e = endpoint;
    if (e.find("://") == std::string::npos) {
      std::string endpoint_host = e.substr(0, e.find('/'));
      e = default_scheme(endpoint_host) + "://" + e;
    }
    CTRD_ASSIGN_OR_RETURN(Url u, parse_url(e));
    RegistryHost h;
    h.scheme = u.scheme;
    h.host = u.host;
    h.path = u.path.empty() ? "/v2" : u.path;
    h.capabilities = kCapabilityPull | kCapabilityResolve;
    if (u.host == host) has_default = true;
    hosts.push_back(std::move(h));
  }
  if (!has_default) {
    RegistryHost h;
    h.host = default_endpoint_host(host);
    h.scheme = default_scheme(h.host);
    h.capabilities = kCapabilityPull | kCapabilityResolve;
    hosts.push_back(std::move(h));
  }
  Status error;
  for (auto& h : hosts) {
    if (is_localhost(host) && h.scheme == "http") h.skip_verify = true;
    if (auto it = config.configs.find(h.host); it != config.configs.end()) {
      const LegacyTls& tls = it->second.tls;
      h.skip_verify = tls.insecure_skip_verify;
      if (!tls.ca_file.empty()) h.ca_files.push_back(tls.ca_file);
      if (!tls.cert_file.empty()) h.client_pairs.emplace_back(tls.cert_file, tls.key_file);
    }
    h.credentials = legacy_credentials(config, h.host, error);
  }
  if (!error.ok()) return error;
  return hosts;
}

}  // namespace

bool is_localhost(std::string_view host) {
  std::string h;
  if (!host.empty() && host.front() == '[') {
    h = std::string(host.substr(1, host.find(']') - 1));
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    h = std::string(host.substr(0, host.find(':')));
  } else {
    h = std::string(host);
  }
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // An IPv4-mapped loopback address (::ffff:127.x.y.z) is loopback too, as Go's IsLoopback says.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

StatusOr<std::vector<RegistryHost>> parse_hosts_toml(std::string_view text, const std::string& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "invalid TOML at line " << e.source().begin.line << ": " << e.description();
    return errdefs::InvalidArgument(msg.str());
  }
  std::vector<RegistryHost> hosts;
  if (const toml::node* host_node = root.get("host")) {
    const toml::table* host_tables = host_node->as_table();
    if (host_tables == nullptr)
      return errdefs::InvalidArgument("host must be a table of [host.\"<url>\"] tables");
    // toml++ keeps keys sorted; containerd tries hosts in the order the file lists them.
    std::vector<std::pair<std::string, const toml::table*>> ordered;
    for (const auto& [url, node] : *host_tables) {
      const toml::table* t = node.as_table();
      if (t == nullptr)
        return errdefs::InvalidArgument("host." + errdefs::quoted(url.str()) + " must be a table");
      ordered.emplace_back(std::string(url.str()), t);
    }
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      return a.second->source().begin.line < b.second->source().begin.line;
    });
    for (const auto& [url, table] : ordered) {
      RegistryHost h;
      CTRD_RETURN_IF_ERROR(parse_host_table(*table, url, base_dir, "host." + errdefs::quoted(url), h));
      hosts.push_back(std::move(h));
    }
  }
  std::string server;
  if (const toml::node* n = root.get("server")) {
    auto s = n->value<std::string>();
    if (!s) return wrong_type("hosts.toml", "server", "a string");
    server = *s;
  }
  RegistryHost top;
  CTRD_RETURN_IF_ERROR(parse_host_table(root, server, base_dir, "hosts.toml", top));
  hosts.push_back(std::move(top));
  return hosts;
}

StatusOr<std::vector<RegistryHost>> configure_hosts(const HostsConfig& config, std::string_view host) {
  if (host.empty()) return errdefs::InvalidArgument("registry host is empty");
  if (!config.config_path.empty()) return hosts_from_config_path(config, host);
  return hosts_from_mirrors(config, host);
}

StatusOr<Credentials> parse_legacy_auth(const LegacyAuth& auth) {
  if (!auth.username.empty()) return Credentials{auth.username, auth.password};
  if (!auth.identitytoken.empty()) return Credentials{"", auth.identitytoken};
  if (!auth.auth.empty()) {
    bool ok = false;
    std::string decoded = base64_decode(auth.auth, ok);
    size_t colon = decoded.find(':');
    if (!ok || colon == std::string::npos) {
      return errdefs::InvalidArgument("auth is not base64 of \"user:password\"");
    }
    std::string password = decoded.substr(colon + 1);
    while (!password.empty() && password.back() == '\0') password.pop_back();
    return Credentials{decoded.substr(0, colon), password};
  }
  return Credentials{};
}

}  // namespace ctrd::remotes
