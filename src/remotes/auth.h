// remotes/auth: registry authorization as containerd's docker authorizer does
// it. Requests go out anonymously (or with what an earlier challenge taught);
// a 401 carries WWW-Authenticate challenges: "Basic" is answered with the
// host's credentials, "Bearer realm=...,service=...,scope=..." by getting a
// token from the realm (GET with service and scope, Basic credentials when
// there are any) and retrying with "Authorization: Bearer <token>". Tokens
// are cached per endpoint host and scope.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"
#include "remotes/hosts.h"
#include "remotes/http.h"

namespace ctrd::remotes {

// One challenge of a WWW-Authenticate header (RFC 7235): the scheme, lowercased,
// and its auth-params, names lowercased, quoted values unescaped.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
  bool operator==(const Challenge&) const = default;
};

// Every challenge in one header value ("Basic realm=\"r\", Bearer realm=...").
// Malformed parts are skipped, as Go's parser does, rather than failing the request.
std::vector<Challenge> parse_www_authenticate(std::string_view value);

// "repository:<repo>:pull": the scope a pull asks for.
std::string pull_scope(std::string_view repository);

// The TLS settings of an endpoint (its first client pair, if any).
TlsSettings tls_settings(const RegistryHost& host);

// Shared by every request of a resolver; thread-safe.
class Authorizer {
 public:
  explicit Authorizer(TransferLimits limits) : limits_(limits) {}

  // The Authorization header value to send to `host` for `scope` ("" for none yet).
  std::string authorization(const RegistryHost& host, const std::string& scope);

  // Learns from a 401: Ok when a retry will carry new authorization;
  // PermissionDenied when the registry wants credentials the host has not,
  // or refused the ones it has; the token server's error otherwise.
  errdefs::Status on_unauthorized(const RegistryHost& host, const std::string& scope,
                                  const HttpResponse& response);

 private:
  errdefs::StatusOr<std::string> fetch_token(const RegistryHost& host, const Challenge& challenge,
                                             const std::string& scope);

  const TransferLimits limits_;
  std::mutex mu_;
  std::map<std::string, std::string> cache_;  // "<host>|<scope>" (scope "" for Basic) -> header value
};

}  // namespace ctrd::remotes
