#include "cri/image_pull.h"

#include <random>

#include "cri/cri_service.h"
#include "images/images.h"
#include "log/log.h"
#include "metadata/db.h"
#include "remotes/hosts.h"
#include "remotes/pull.h"
#include "remotes/reference.h"
#include "remotes/resolver.h"
#include "services/images/images.h"
#include "unpack/unpack.h"

namespace ctrd::cri {
namespace {

constexpr std::string_view kManagedLabel = "io.cri-containerd.image";

remotes::HostsConfig hosts_config(const RegistryConfig& registry) {
  remotes::HostsConfig out;
  out.config_path = registry.config_path;
  for (const auto& [host, mirror] : registry.mirrors) out.mirrors[host] = mirror.endpoint;
  for (const auto& [host, c] : registry.configs) {
    out.configs[host] = remotes::LegacyHostConfig{.auth = {.username = c.auth.username,
                                                           .password = c.auth.password,
                                                           .auth = c.auth.auth,
                                                           .identitytoken = c.auth.identitytoken},
                                                  .tls = {.insecure_skip_verify = c.tls.insecure_skip_verify,
                                                          .ca_file = c.tls.ca_file,
                                                          .cert_file = c.tls.cert_file,
                                                          .key_file = c.tls.key_file}};
  }
  return out;
}

std::string random_suffix() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> dist;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(dist(rd)));
  return out;
}

// Creates the record, or points an existing one of that name at `target`.
errdefs::Status put_record(services::images::ImagesService& images, const std::string& name,
                           const content::Descriptor& target) {
  metadata::Image record;
  record.name = name;
  record.target = target;
  record.labels[std::string(kManagedLabel)] = "managed";
  auto created = images.create(std::string(kNamespace), record);
  if (created.ok()) return errdefs::Status::Ok();
  if (created.status().code() != errdefs::Code::kAlreadyExists) return created.status();
  return images.update(std::string(kNamespace), record, {"target", "labels"}).status();
}

}  // namespace

ImagePuller::ImagePuller(const Config& config, std::shared_ptr<metadata::DB> db,
                         std::shared_ptr<services::images::ImagesService> images,
                         std::shared_ptr<diff::Applier> applier, ctrd::images::Platform platform)
    : registry_(config.registry),
      snapshotter_(config.containerd.snapshotter),
      max_concurrent_downloads_(config.max_concurrent_downloads),
      db_(std::move(db)),
      images_(std::move(images)),
      applier_(std::move(applier)),
      platform_(std::move(platform)) {}

errdefs::StatusOr<std::string> ImagePuller::pull(const std::string& ref, const PullAuth& auth) {
  CTRD_ASSIGN_OR_RETURN(remotes::Reference reference, remotes::parse_reference(ref));
  const remotes::HostsConfig hosts = hosts_config(registry_);
  remotes::Credentials credentials;
  if (!auth.username.empty() || !auth.password.empty()) {
    credentials = {auth.username, auth.password};
  } else if (!auth.identity_token.empty()) {
    credentials = {"", auth.identity_token};
  } else if (!auth.auth.empty()) {
    CTRD_ASSIGN_OR_RETURN(
        credentials,
        remotes::parse_legacy_auth({.username = "", .password = "", .auth = auth.auth, .identitytoken = ""}));
  }
  remotes::ResolverOptions options;
  options.hosts =
      [hosts, credentials](std::string_view domain) -> errdefs::StatusOr<std::vector<remotes::RegistryHost>> {
    CTRD_ASSIGN_OR_RETURN(auto endpoints, remotes::configure_hosts(hosts, domain));
    // The kubelet's credentials are for this image's registry: they win.
    if (!credentials.empty()) {
      for (auto& endpoint : endpoints) endpoint.credentials = credentials;
    }
    return endpoints;
  };
  remotes::Resolver resolver(std::move(options));

  const std::string ns(kNamespace);
  const std::string lease_id = "cri-pull-" + random_suffix();
  CTRD_RETURN_IF_ERROR(db_->leases(ns).create(lease_id, {}).status());
  struct LeaseGuard {
    metadata::DB& db;
    std::string ns, id;
    ~LeaseGuard() { (void)db.leases(ns).remove(id); }
  } lease{*db_, ns, lease_id};

  auto store = db_->content_store(ns, lease_id);
  auto target = remotes::pull(
      resolver, reference.string(), *store,
      {.platform = platform_,
       .max_concurrent_downloads = static_cast<size_t>(std::max(max_concurrent_downloads_, 1))});
  if (!target.ok()) return target.status();  // says "pull <ref>" already
  auto unpacked = unpack::unpack(
      {.db = db_, .ns = ns, .snapshotter = snapshotter_, .applier = applier_, .lease = lease_id}, *target,
      platform_);
  if (!unpacked.ok()) return unpacked.status().with_context("unpack " + reference.string());

  ctrd::images::StoreProvider provider(*store);
  CTRD_ASSIGN_OR_RETURN(ctrd::images::ResolvedImage image,
                        ctrd::images::resolve(provider, *target, platform_));
  const std::string id = image.config.digest;
  // The name as given (with its tag or digest), the repo digest, and the id.
  CTRD_RETURN_IF_ERROR(put_record(*images_, reference.string(), *target));
  CTRD_RETURN_IF_ERROR(put_record(*images_, reference.name() + "@" + target->digest, *target));
  CTRD_RETURN_IF_ERROR(put_record(*images_, id, *target));
  log::info("pulled image", {{"ref", reference.string()}, {"id", id}, {"snapshot", *unpacked}});
  return id;
}

}  // namespace ctrd::cri
