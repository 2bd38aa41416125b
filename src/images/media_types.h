// images/media_types: the media types of image content, OCI and Docker schema 2
// (containerd's images and ocispec constants), and what kind each one names.
#pragma once

#include <string_view>

namespace ctrd::images {

// OCI image-spec.
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaTypeOciLayerNonDistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerNonDistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerNonDistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Docker image manifest v2, schema 2.
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kMediaTypeDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kMediaTypeDockerLayerForeign =
    "application/vnd.docker.image.rootfs.foreign.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerForeignGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// Schema 1 is recognised only to be refused with a clear message.
inline constexpr std::string_view kMediaTypeDockerSchema1Manifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// An OCI index or a Docker manifest list: a list of per-platform manifests.
bool is_index_type(std::string_view media_type);
// An OCI or Docker schema 2 image manifest.
bool is_manifest_type(std::string_view media_type);
// An OCI or Docker image config.
bool is_config_type(std::string_view media_type);
// Any OCI layer ("application/vnd.oci.image.layer." covers every compression
// and the non-distributable ones) or a Docker layer, with or without a "+..."
// suffix such as "+encrypted", as containerd's images.IsLayerType.
bool is_layer_type(std::string_view media_type);

}  // namespace ctrd::images
