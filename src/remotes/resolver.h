// remotes/resolver: the registry side of a pull, as containerd's
// remotes/docker resolver and fetcher: resolve a reference to the
// descriptor of its manifest or index, and fetch blobs by digest.
//
// A registry is not trusted: every fetched byte is counted and hashed as it
// streams, so a body longer than its descriptor is cut off, and a short body
// or one with another digest is DataLoss naming both digests. Manifests are
// capped (4 MiB), transfers that stall are DeadlineExceeded, redirects are
// bounded.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "remotes/auth.h"
#include "remotes/hosts.h"
#include "remotes/http.h"
#include "remotes/reference.h"

namespace ctrd::remotes {

inline constexpr int64_t kMaxManifestSize = int64_t{4} << 20;

struct ResolverOptions {
  // The endpoints for a reference's domain; unset: configure_hosts({}, domain).
  std::function<errdefs::StatusOr<std::vector<RegistryHost>>(std::string_view domain)> hosts;
  TransferLimits limits;
  int64_t max_manifest_size = kMaxManifestSize;
};

// Receives a blob's bytes in order as they arrive; an error stops the fetch.
using ChunkSink = std::function<errdefs::Status(std::string_view data)>;

// Thread-safe: fetches of one resolver may run concurrently.
class Resolver {
 public:
  explicit Resolver(ResolverOptions options = {});

  // HEAD (falling back to GET) of /v2/<repo>/manifests/<tag|digest> on each
  // endpoint with the resolve capability, in order, asking for OCI and Docker
  // indexes and manifests. The descriptor's media type is the Content-Type;
  // its digest is Docker-Content-Digest (or the digest the reference pins,
  // or the digest of a GET's body); its size is Content-Length. NotFound when
  // no endpoint has it; the last endpoint's error when they fail otherwise.
  errdefs::StatusOr<content::Descriptor> resolve(const Reference& ref);

  // Streams the blob `descriptor` names from the first endpoint with the pull
  // capability that has it (manifests and indexes from manifests/<digest>,
  // then blobs/<digest>). `sink` sees bytes before they are verified: Ok
  // means they were exactly the descriptor's size and digest; on an error the
  // caller discards what it received. Another endpoint is tried only when
  // nothing reached `sink` yet.
  errdefs::Status fetch(const Reference& ref, const content::Descriptor& descriptor, const ChunkSink& sink);

  const ResolverOptions& options() const { return options_; }

 private:
  // One request with authorization: retried once after a 401 that taught something.
  errdefs::StatusOr<HttpResponse> request(const RegistryHost& host, const std::string& scope, HttpRequest req,
                                          const BodySink& sink);
  errdefs::StatusOr<std::vector<RegistryHost>> hosts_with(const Reference& ref, unsigned capability);

  ResolverOptions options_;
  Authorizer authorizer_;
};

// The Accept header value of a resolve: the index and manifest types, OCI and Docker.
std::string manifest_accept_header();

}  // namespace ctrd::remotes
