#include "remotes/resolver.h"

#include <nlohmann/json.hpp>

#include "digest/sha256.h"
#include "images/media_types.h"

namespace ctrd::remotes {
namespace {

using errdefs::Status;
using errdefs::StatusOr;

std::string media_type_of(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// A registry's error document ({"errors":[{"code","message"}]}) in a few words.
std::string registry_error(const HttpResponse& r) {
  auto doc = nlohmann::json::parse(r.error_body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array() && !doc["errors"].empty()) {
    const auto& e = doc["errors"][0];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      return ": " + e["message"].get<std::string>();
    }
  }
  return "";
}

Status status_error(const HttpResponse& r, const std::string& what) {
  std::string msg = what + ": HTTP " + std::to_string(r.status) + registry_error(r);
  if (r.status == 401 || r.status == 403) return errdefs::PermissionDenied(msg);
  if (r.status == 404) return errdefs::NotFound(msg);
  if (r.status == 429 || r.status >= 500) return errdefs::Unavailable(msg);
  return errdefs::FailedPrecondition(msg);
}

StatusOr<int64_t> content_length(const HttpResponse& r) {
  std::string v = r.header("content-length");
  if (v.empty()) return int64_t{-1};
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= 0) return static_cast<int64_t>(n);
  } catch (const std::exception&) {
  }
  return errdefs::DataLoss("invalid Content-Length " + errdefs::quoted(v));
}

// The media type a document states, for a registry that sends no Content-Type.
std::string sniff_media_type(std::string_view body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return "";
  if (auto it = doc.find("mediaType"); it != doc.end() && it->is_string()) return it->get<std::string>();
  if (doc.contains("manifests")) return std::string(images::kMediaTypeOciIndex);
  if (doc.contains("layers")) return std::string(images::kMediaTypeOciManifest);
  return "";
}

}  // namespace

std::string manifest_accept_header() {
  return std::string(images::kMediaTypeOciIndex) + ", " + std::string(images::kMediaTypeOciManifest) + ", " +
         std::string(images::kMediaTypeDockerManifestList) + ", " +
         std::string(images::kMediaTypeDockerManifest) + ", */*";
}

Resolver::Resolver(ResolverOptions options) : options_(std::move(options)), authorizer_(options_.limits) {
  if (!options_.hosts) {
    options_.hosts = [](std::string_view domain) { return configure_hosts({}, domain); };
  }
}

StatusOr<std::vector<RegistryHost>> Resolver::hosts_with(const Reference& ref, unsigned capability) {
  CTRD_ASSIGN_OR_RETURN(auto all, options_.hosts(ref.domain));
  std::vector<RegistryHost> hosts;
  for (auto& h : all) {
    if ((h.capabilities & capability) != 0) hosts.push_back(std::move(h));
  }
  if (hosts.empty()) {
    return errdefs::NotFound("no endpoint of " + ref.domain + " may " +
                             (capability == kCapabilityResolve ? "resolve" : "pull"));
  }
  return hosts;
}

StatusOr<HttpResponse> Resolver::request(const RegistryHost& host, const std::string& scope, HttpRequest req,
                                         const BodySink& sink) {
  for (const auto& [name, value] : host.headers) req.headers.push_back(name + ": " + value);
  const TlsSettings tls = tls_settings(host);
  for (int attempt = 0;; ++attempt) {
    HttpRequest sent = req;
    if (std::string auth = authorizer_.authorization(host, scope); !auth.empty()) {
      sent.headers.push_back("Authorization: " + auth);
    }
    CTRD_ASSIGN_OR_RETURN(HttpResponse response, perform(sent, tls, options_.limits, sink));
    if (response.status != 401) return response;
    if (attempt > 0) {
      return errdefs::PermissionDenied(req.method + " " + req.url +
                                       ": still unauthorized after authenticating" +
                                       registry_error(response));
    }
    CTRD_RETURN_IF_ERROR(authorizer_.on_unauthorized(host, scope, response).with_context(req.url));
  }
}

StatusOr<content::Descriptor> Resolver::resolve(const Reference& ref) {
  CTRD_ASSIGN_OR_RETURN(auto hosts, hosts_with(ref, kCapabilityResolve));
  std::vector<std::string> paths{"manifests/" + ref.object()};
  if (!ref.digest.empty()) paths.push_back("blobs/" + ref.digest);
  const std::string scope = pull_scope(ref.repository);
  const std::string accept = "Accept: " + manifest_accept_header();
  Status last = errdefs::NotFound(ref.string() + ": not found");

  for (const auto& path : paths) {
    for (const auto& host : hosts) {
      const std::string url = host.base_url() + "/" + ref.repository + "/" + path;
      auto head = request(host, scope, {"HEAD", url, {accept}}, nullptr);
      if (!head.ok()) {
        if (head.status().code() == errdefs::Code::kPermissionDenied) return head.status();
        last = head.status();
        continue;
      }
      HttpResponse response = std::move(*head);
      if (response.status == 404) continue;
      // Registries that do not answer HEAD (405, 501) are asked with GET.
      bool use_get = response.status == 405 || response.status == 501;
      if (!use_get && !response.success()) {
        last = status_error(response, "HEAD " + url);
        continue;
      }
      content::Descriptor d;
      int64_t size = -1;
      if (!use_get) {
        d.media_type = media_type_of(response.header("content-type"));
        d.digest = ref.digest.empty() ? response.header("docker-content-digest") : ref.digest;
        CTRD_ASSIGN_OR_RETURN(size, content_length(response));
        if (size > options_.max_manifest_size) {
          return errdefs::ResourceExhausted(url + ": manifest of " + std::to_string(size) +
                                            " bytes is over the limit of " +
                                            std::to_string(options_.max_manifest_size));
        }
        use_get = d.digest.empty() || size < 0 || d.media_type.empty() || d.media_type == "application/json";
      }
      if (use_get) {
        std::string body;
        auto sink = [&](const HttpResponse&, std::string_view data) -> Status {
          if (static_cast<int64_t>(body.size() + data.size()) > options_.max_manifest_size) {
            return errdefs::ResourceExhausted(url + ": manifest is over the limit of " +
                                              std::to_string(options_.max_manifest_size) + " bytes");
          }
          body.append(data);
          return Status::Ok();
        };
        auto got = request(host, scope, {"GET", url, {accept}}, sink);
        if (!got.ok()) {
          if (got.status().code() == errdefs::Code::kResourceExhausted ||
              got.status().code() == errdefs::Code::kPermissionDenied) {
            return got.status();
          }
          last = got.status();
          continue;
        }
        if (got->status == 404) continue;
        if (!got->success()) {
          last = status_error(*got, "GET " + url);
          continue;
        }
        std::string computed = "sha256:" + digest::Sha256::hex_of(body);
        if (!ref.digest.empty() && computed != ref.digest) {
          return errdefs::DataLoss(host.host + " sent a manifest with digest " + computed + " for " +
                                   ref.digest);
        }
        std::string stated = got->header("docker-content-digest");
        if (!stated.empty() && stated != computed) {
          return errdefs::DataLoss(host.host + " sent a manifest with digest " + computed + " but named it " +
                                   stated);
        }
        d.digest = computed;
        size = static_cast<int64_t>(body.size());
        d.media_type = media_type_of(got->header("content-type"));
        if (d.media_type.empty() || d.media_type == "application/json") d.media_type = sniff_media_type(body);
      }
      if (Status s = content::validate_digest(d.digest); !s.ok()) {
        return errdefs::DataLoss(url + ": the registry named the manifest " + errdefs::quoted(d.digest));
      }
      if (!ref.digest.empty() && d.digest != ref.digest) {
        return errdefs::DataLoss(host.host + " answered " + d.digest + " for " + ref.digest);
      }
      if (d.media_type.empty()) return errdefs::FailedPrecondition(url + ": no media type for the manifest");
      d.size = size;
      return d;
    }
  }
  return last;
}

Status Resolver::fetch(const Reference& ref, const content::Descriptor& descriptor, const ChunkSink& sink) {
  CTRD_RETURN_IF_ERROR(content::validate_digest(descriptor.digest));
  if (descriptor.size < 0) return errdefs::InvalidArgument(descriptor.digest + ": negative size");
  const bool document =
      images::is_index_type(descriptor.media_type) || images::is_manifest_type(descriptor.media_type);
  if (document && descriptor.size > options_.max_manifest_size) {
    return errdefs::ResourceExhausted(descriptor.digest + ": manifest of " + std::to_string(descriptor.size) +
                                      " bytes is over the limit of " +
                                      std::to_string(options_.max_manifest_size));
  }
  CTRD_ASSIGN_OR_RETURN(auto hosts, hosts_with(ref, kCapabilityPull));
  std::vector<std::string> paths;
  if (document) paths.push_back("manifests/" + descriptor.digest);
  paths.push_back("blobs/" + descriptor.digest);
  const std::string scope = pull_scope(ref.repository);
  std::vector<std::string> headers;
  if (document) headers.push_back("Accept: " + descriptor.media_type + ", */*");
  Status last = errdefs::NotFound(ref.name() + "@" + descriptor.digest + ": not found");

  for (const auto& path : paths) {
    for (const auto& host : hosts) {
      const std::string url = host.base_url() + "/" + ref.repository + "/" + path;
      digest::Sha256 hash;
      int64_t received = 0;
      bool started = false;
      auto verify = [&](const HttpResponse& response, std::string_view data) -> Status {
        if (!started) {
          started = true;
          CTRD_ASSIGN_OR_RETURN(int64_t declared, content_length(response));
          if (declared > descriptor.size) {
            return document ? errdefs::ResourceExhausted(url + ": declares " + std::to_string(declared) +
                                                         " bytes for a manifest of " +
                                                         std::to_string(descriptor.size))
                            : errdefs::DataLoss(url + ": declares " + std::to_string(declared) +
                                                " bytes for a blob of " + std::to_string(descriptor.size));
          }
        }
        received += static_cast<int64_t>(data.size());
        if (received > descriptor.size) {
          return errdefs::DataLoss(host.host + " sent more than the " + std::to_string(descriptor.size) +
                                   " bytes of " + descriptor.digest);
        }
        hash.update(data);
        return sink(data);
      };
      auto got = request(host, scope, {"GET", url, headers}, verify);
      if (!got.ok()) {
        if (started || got.status().code() == errdefs::Code::kPermissionDenied) return got.status();
        last = got.status();
        continue;
      }
      if (got->status == 404) continue;
      if (!got->success()) {
        last = status_error(*got, "GET " + url);
        continue;
      }
      if (received != descriptor.size) {
        return errdefs::DataLoss(host.host + " ended " + descriptor.digest + " after " +
                                 std::to_string(received) + " of " + std::to_string(descriptor.size) +
                                 " bytes");
      }
      if (hash.digest() != descriptor.digest) {
        return errdefs::DataLoss(host.host + " sent content with digest " + hash.digest() + " for " +
                                 descriptor.digest);
      }
      return Status::Ok();
    }
  }
  return last;
}

}  // namespace ctrd::remotes
