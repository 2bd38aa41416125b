// cri/image_pull: PullImage — the image fetched from its registry into the
// k8s.io content store (remotes::pull, through the registry configuration:
// registry.config_path's hosts.toml files, else the older mirrors/configs),
// unpacked into the configured snapshotter (unpack::unpack), and recorded as
// containerd's CRI records it: the reference as given (normalized), its repo
// digest and its id, each labelled io.cri-containerd.image=managed. A lease
// holds what is fetched until the records exist.
#pragma once

#include <memory>
#include <string>

#include "cri/config.h"
#include "errdefs/errdefs.h"
#include "images/platform.h"

namespace ctrd::metadata {
class DB;
}
namespace ctrd::diff {
class Applier;
}
namespace ctrd::services::images {
class ImagesService;
}

namespace ctrd::cri {

// Credentials for the registry from the kubelet's AuthConfig.
struct PullAuth {
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password"
  std::string identity_token;
  std::string registry_token;
};

class ImagePuller {
 public:
  ImagePuller(const Config& config, std::shared_ptr<metadata::DB> db,
              std::shared_ptr<services::images::ImagesService> images, std::shared_ptr<diff::Applier> applier,
              ctrd::images::Platform platform);

  // The image id (its config digest). InvalidArgument for a reference that
  // does not parse; the registry's, the unpack's or the store's error
  // otherwise, with what was being done.
  errdefs::StatusOr<std::string> pull(const std::string& ref, const PullAuth& auth);

 private:
  const RegistryConfig registry_;
  const std::string snapshotter_;
  const int max_concurrent_downloads_;
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<services::images::ImagesService> images_;
  std::shared_ptr<diff::Applier> applier_;
  const ctrd::images::Platform platform_;
};

}  // namespace ctrd::cri
