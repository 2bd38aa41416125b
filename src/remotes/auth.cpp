#include "remotes/auth.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ctrd::remotes {
namespace {

using errdefs::Status;
using errdefs::StatusOr;

constexpr size_t kMaxTokenResponse = 1 << 20;

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~/=").find(c) != std::string_view::npos;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string basic_header(const Credentials& c) {
  return "Basic " + base64_encode(c.username + ":" + c.secret);
}

}  // namespace

std::vector<Challenge> parse_www_authenticate(std::string_view v) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t start = i;
    while (i < v.size() && is_token_char(v[i]) && v[i] != '=') ++i;
    return std::string(v.substr(start, i - start));
  };
  while (i < v.size()) {
    skip_space();
    while (i < v.size() && (v[i] == ',' || v[i] == ' ')) ++i;
    std::string scheme = token();
    if (scheme.empty()) {
      ++i;  // not a token: skip the character and look for the next challenge
      continue;
    }
    Challenge c{lower(scheme), {}};
    // auth-params until the next challenge: "name=value" pairs separated by commas.
    while (true) {
      skip_space();
      size_t mark = i;
      std::string name = token();
      skip_space();
      if (name.empty() || i >= v.size() || v[i] != '=') {
        i = mark;  // a new challenge's scheme (or the end)
        break;
      }
      ++i;  // '='
      skip_space();
      std::string value;
      if (i < v.size() && v[i] == '"') {
        ++i;
        while (i < v.size() && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < v.size()) ++i;
          value.push_back(v[i++]);
        }
        if (i < v.size()) ++i;  // closing quote
      } else {
        size_t start = i;
        while (i < v.size() && v[i] != ',' && v[i] != ' ') ++i;
        value = std::string(v.substr(start, i - start));
      }
      c.params[lower(name)] = value;
      skip_space();
      if (i < v.size() && v[i] == ',') ++i;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string pull_scope(std::string_view repository) {
  return "repository:" + std::string(repository) + ":pull";
}

TlsSettings tls_settings(const RegistryHost& host) {
  TlsSettings tls;
  tls.skip_verify = host.skip_verify;
  tls.ca_files = host.ca_files;
  if (!host.client_pairs.empty()) {
    tls.client_cert = host.client_pairs.front().first;
    tls.client_key = host.client_pairs.front().second;
  }
  return tls;
}

std::string Authorizer::authorization(const RegistryHost& host, const std::string& scope) {
  std::lock_guard lock(mu_);
  if (auto it = cache_.find(host.host + "|" + scope); it != cache_.end()) return it->second;
  if (auto it = cache_.find(host.host + "|"); it != cache_.end()) return it->second;
  return "";
}

Status Authorizer::on_unauthorized(const RegistryHost& host, const std::string& scope,
                                   const HttpResponse& response) {
  std::vector<Challenge> challenges;
  for (const auto& value : response.www_authenticate) {
    for (auto& c : parse_www_authenticate(value)) challenges.push_back(std::move(c));
  }
  // Bearer first, as containerd prefers it when a registry offers both.
  std::stable_sort(challenges.begin(), challenges.end(), [](const Challenge& a, const Challenge& b) {
    return a.scheme == "bearer" && b.scheme != "bearer";
  });
  for (const auto& c : challenges) {
    if (c.scheme == "bearer") {
      CTRD_ASSIGN_OR_RETURN(std::string token, fetch_token(host, c, scope));
      std::lock_guard lock(mu_);
      cache_[host.host + "|" + scope] = "Bearer " + token;
      return Status::Ok();
    }
    if (c.scheme == "basic") {
      if (host.credentials.empty()) {
        return errdefs::PermissionDenied(host.host +
                                         " requires Basic authentication and no credentials are configured");
      }
      std::string header = basic_header(host.credentials);
      std::lock_guard lock(mu_);
      std::string& cached = cache_[host.host + "|"];
      if (cached == header) {
        return errdefs::PermissionDenied(host.host + " refused the configured credentials of user " +
                                         errdefs::quoted(host.credentials.username));
      }
      cached = header;
      return Status::Ok();
    }
  }
  return errdefs::PermissionDenied(
      host.host + " answered 401 Unauthorized without a challenge ctrd can answer" +
      (response.www_authenticate.empty() ? std::string() : ": " + response.www_authenticate.front()));
}

StatusOr<std::string> Authorizer::fetch_token(const RegistryHost& host, const Challenge& challenge,
                                              const std::string& scope) {
  auto realm = challenge.params.find("realm");
  if (realm == challenge.params.end() || realm->second.empty()) {
    return errdefs::Unavailable(host.host + ": Bearer challenge without a realm");
  }
  // The scopes the registry named and the pull's own, each once.
  std::set<std::string> scopes;
  if (auto s = challenge.params.find("scope"); s != challenge.params.end()) {
    std::istringstream words(s->second);
    for (std::string w; words >> w;) scopes.insert(w);
  }
  if (!scope.empty()) scopes.insert(scope);

  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (auto s = challenge.params.find("service"); s != challenge.params.end() && !s->second.empty()) {
    url += sep + std::string("service=") + url_escape(s->second);
    sep = '&';
  }
  for (const auto& s : scopes) {
    url += sep + std::string("scope=") + url_escape(s);
    sep = '&';
  }
  HttpRequest request{"GET", url, {"Accept: application/json"}};
  if (!host.credentials.empty())
    request.headers.push_back("Authorization: " + basic_header(host.credentials));

  std::string body;
  auto sink = [&](const HttpResponse&, std::string_view data) -> Status {
    if (body.size() + data.size() > kMaxTokenResponse) {
      return errdefs::ResourceExhausted("token response from " + realm->second + " is over 1 MiB");
    }
    body.append(data);
    return Status::Ok();
  };
  CTRD_ASSIGN_OR_RETURN(HttpResponse response, perform(request, tls_settings(host), limits_, sink));
  if (response.status == 401 || response.status == 403) {
    return errdefs::PermissionDenied(
        "token server " + realm->second + " refused " +
        (host.credentials.empty() ? std::string("an anonymous request")
                                  : "the credentials of user " + errdefs::quoted(host.credentials.username)) +
        " (HTTP " + std::to_string(response.status) + ")");
  }
  if (!response.success()) {
    return errdefs::Unavailable("token server " + realm->second + " answered HTTP " +
                                std::to_string(response.status));
  }
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return errdefs::Unavailable("token server " + realm->second +
                                " answered something other than a JSON object");
  }
  for (const char* key : {"token", "access_token"}) {
    auto it = doc.find(key);
    if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  return errdefs::Unavailable("token server " + realm->second + " answered without a token");
}

}  // namespace ctrd::remotes
