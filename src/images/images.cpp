#include "images/images.h"

#include <nlohmann/json.hpp>

#include "digest/sha256.h"

namespace ctrd::images {
namespace {

using errdefs::Status;
using errdefs::StatusOr;
using json = nlohmann::json;

std::string describe(const content::Descriptor& d) {
  return (d.media_type.empty() ? std::string("blob") : d.media_type) + " " + d.digest;
}

// Reads the fields of one JSON object, so that a field of the wrong type is an
// error naming it rather than an exception. Absent and null fields leave the
// output as it is, and a null string reads as "", as Go's encoding/json does.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  std::string path(std::string_view key) const { return where_ + "." + std::string(key); }

  // The field, or nullptr when it is absent or null.
  const json* field(std::string_view key) const {
    auto it = object_.find(std::string(key));
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(std::string_view key) const { return object_.contains(std::string(key)); }

  Status string(std::string_view key, std::string& out) const {
    const json* value = field(key);
    return value == nullptr ? Status::Ok() : to_string(*value, path(key), out);
  }

  Status strings(std::string_view key, std::vector<std::string>& out) const {
    const json* value = field(key);
    if (value == nullptr) return Status::Ok();
    if (!value->is_array()) return wrong_type(path(key), "an array of strings");
    out.clear();
    for (size_t i = 0; i < value->size(); ++i) {
      CTRD_RETURN_IF_ERROR(
          to_string((*value)[i], path(key) + "[" + std::to_string(i) + "]", out.emplace_back()));
    }
    return Status::Ok();
  }

  Status string_map(std::string_view key, std::map<std::string, std::string>& out) const {
    const json* value = field(key);
    if (value == nullptr) return Status::Ok();
    if (!value->is_object()) return wrong_type(path(key), "an object of strings");
    out.clear();
    for (const auto& [name, item] : value->items()) {
      CTRD_RETURN_IF_ERROR(to_string(item, path(key) + "." + name, out[name]));
    }
    return Status::Ok();
  }

  // The keys of an object used as a set ({"/data": {}}), sorted.
  Status object_keys(std::string_view key, std::vector<std::string>& out) const {
    const json* value = field(key);
    if (value == nullptr) return Status::Ok();
    if (!value->is_object()) return wrong_type(path(key), "an object");
    out.clear();
    for (const auto& [name, item] : value->items()) out.push_back(name);
    return Status::Ok();
  }

  Status int64(std::string_view key, int64_t& out) const {
    const json* value = field(key);
    if (value == nullptr) return Status::Ok();
    if (value->is_number_unsigned()) {
      if (value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return errdefs::InvalidArgument(path(key) + ": out of range");
      }
      out = static_cast<int64_t>(value->get<uint64_t>());
      return Status::Ok();
    }
    if (!value->is_number_integer()) return wrong_type(path(key), "an integer");
    out = value->get<int64_t>();
    return Status::Ok();
  }

  // `out` points at the object field, or is nullptr when it is absent or null.
  Status object(std::string_view key, const json*& out) const {
    out = field(key);
    if (out != nullptr && !out->is_object()) return wrong_type(path(key), "an object");
    return Status::Ok();
  }

  Status array(std::string_view key, const json*& out) const {
    out = field(key);
    if (out != nullptr && !out->is_array()) return wrong_type(path(key), "an array");
    return Status::Ok();
  }

  static Status wrong_type(const std::string& path, std::string_view want) {
    return errdefs::InvalidArgument(path + ": want " + std::string(want));
  }

 private:
  static Status to_string(const json& value, const std::string& path, std::string& out) {
    if (value.is_null()) {
      out.clear();
      return Status::Ok();
    }
    if (!value.is_string()) return wrong_type(path, "a string");
    out = value.get<std::string>();
    return Status::Ok();
  }

  const json& object_;
  std::string where_;
};

StatusOr<json> parse_object(std::string_view text, std::string_view what) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return errdefs::InvalidArgument(std::string(what) + ": not valid JSON");
  if (!doc.is_object()) return errdefs::InvalidArgument(std::string(what) + ": not a JSON object");
  return doc;
}

Status parse_platform(const json& value, const std::string& where, Platform& out) {
  if (!value.is_object()) return ObjectReader::wrong_type(where, "an object");
  const ObjectReader fields(value, where);
  CTRD_RETURN_IF_ERROR(fields.string("os", out.os));
  CTRD_RETURN_IF_ERROR(fields.string("architecture", out.architecture));
  return fields.string("variant", out.variant);
}

// An OCI descriptor; `platform` (index entries only) receives its platform.
Status parse_descriptor(const json& value, const std::string& where, content::Descriptor& out,
                        std::optional<Platform>* platform = nullptr) {
  if (!value.is_object()) return ObjectReader::wrong_type(where, "a descriptor object");
  const ObjectReader fields(value, where);
  CTRD_RETURN_IF_ERROR(fields.string("mediaType", out.media_type));
  CTRD_RETURN_IF_ERROR(fields.string("digest", out.digest));
  if (Status s = content::validate_digest(out.digest); !s.ok()) return s.with_context(fields.path("digest"));
  CTRD_RETURN_IF_ERROR(fields.int64("size", out.size));
  if (out.size < 0) return errdefs::InvalidArgument(fields.path("size") + ": negative");
  CTRD_RETURN_IF_ERROR(fields.string_map("annotations", out.annotations));
  if (platform != nullptr) {
    if (const json* p = fields.field("platform"); p != nullptr) {
      CTRD_RETURN_IF_ERROR(parse_platform(*p, fields.path("platform"), platform->emplace()));
    }
  }
  return Status::Ok();
}

// containerd's validateMediaType: a document must not carry the fields of the
// other kind, so that a manifest cannot pose as an index (or the reverse) to
// confuse what is walked; schema 1 is not supported at all.
Status check_document_kind(const ObjectReader& doc, std::string_view media_type, std::string_view what) {
  if (doc.has("fsLayers")) {
    return errdefs::InvalidArgument(std::string(what) + ": Docker schema 1 manifests are not supported");
  }
  std::string stated;
  CTRD_RETURN_IF_ERROR(doc.string("mediaType", stated));
  if (is_manifest_type(media_type) && (doc.has("manifests") || is_index_type(stated))) {
    return errdefs::InvalidArgument(std::string(what) + ": expected a manifest but found an index (" +
                                    std::string(media_type) + ")");
  }
  if (is_index_type(media_type) && (doc.has("config") || doc.has("layers") || is_manifest_type(stated))) {
    return errdefs::InvalidArgument(std::string(what) + ": expected an index but found a manifest (" +
                                    std::string(media_type) + ")");
  }
  return Status::Ok();
}

StatusOr<Manifest> parse_manifest_unchecked(std::string_view text, std::string_view media_type) {
  CTRD_ASSIGN_OR_RETURN(json doc, parse_object(text, "manifest"));
  const ObjectReader fields(doc, "manifest");
  CTRD_RETURN_IF_ERROR(check_document_kind(fields, media_type, "manifest"));
  Manifest manifest;
  CTRD_RETURN_IF_ERROR(fields.string("mediaType", manifest.media_type));
  const json* config = fields.field("config");
  if (config == nullptr) return errdefs::InvalidArgument("manifest: no config");
  CTRD_RETURN_IF_ERROR(parse_descriptor(*config, fields.path("config"), manifest.config));
  const json* layers = nullptr;
  CTRD_RETURN_IF_ERROR(fields.array("layers", layers));
  if (layers != nullptr) {
    for (size_t i = 0; i < layers->size(); ++i) {
      CTRD_RETURN_IF_ERROR(parse_descriptor((*layers)[i], fields.path("layers[" + std::to_string(i) + "]"),
                                            manifest.layers.emplace_back()));
    }
  }
  CTRD_RETURN_IF_ERROR(fields.string_map("annotations", manifest.annotations));
  return manifest;
}

StatusOr<Index> parse_index_unchecked(std::string_view text, std::string_view media_type) {
  CTRD_ASSIGN_OR_RETURN(json doc, parse_object(text, "index"));
  const ObjectReader fields(doc, "index");
  CTRD_RETURN_IF_ERROR(check_document_kind(fields, media_type, "index"));
  Index index;
  CTRD_RETURN_IF_ERROR(fields.string("mediaType", index.media_type));
  const json* manifests = nullptr;
  CTRD_RETURN_IF_ERROR(fields.array("manifests", manifests));
  if (manifests != nullptr) {
    for (size_t i = 0; i < manifests->size(); ++i) {
      IndexEntry& entry = index.manifests.emplace_back();
      CTRD_RETURN_IF_ERROR(parse_descriptor((*manifests)[i],
                                            fields.path("manifests[" + std::to_string(i) + "]"),
                                            entry.descriptor, &entry.platform));
    }
  }
  CTRD_RETURN_IF_ERROR(fields.string_map("annotations", index.annotations));
  return index;
}

StatusOr<ImageConfig> parse_image_config_unchecked(std::string_view text) {
  CTRD_ASSIGN_OR_RETURN(json doc, parse_object(text, "image config"));
  const ObjectReader fields(doc, "image config");
  ImageConfig out;
  CTRD_RETURN_IF_ERROR(fields.string("created", out.created));
  CTRD_RETURN_IF_ERROR(fields.string("author", out.author));
  CTRD_RETURN_IF_ERROR(fields.string("architecture", out.architecture));
  CTRD_RETURN_IF_ERROR(fields.string("os", out.os));
  CTRD_RETURN_IF_ERROR(fields.string("variant", out.variant));

  const json* runtime = nullptr;
  CTRD_RETURN_IF_ERROR(fields.object("config", runtime));
  if (runtime != nullptr) {
    const ObjectReader defaults(*runtime, fields.path("config"));
    CTRD_RETURN_IF_ERROR(defaults.string("User", out.user));
    CTRD_RETURN_IF_ERROR(defaults.strings("Env", out.env));
    CTRD_RETURN_IF_ERROR(defaults.strings("Entrypoint", out.entrypoint));
    CTRD_RETURN_IF_ERROR(defaults.strings("Cmd", out.cmd));
    CTRD_RETURN_IF_ERROR(defaults.string("WorkingDir", out.working_dir));
    CTRD_RETURN_IF_ERROR(defaults.object_keys("Volumes", out.volumes));
    CTRD_RETURN_IF_ERROR(defaults.object_keys("ExposedPorts", out.exposed_ports));
    CTRD_RETURN_IF_ERROR(defaults.string("StopSignal", out.stop_signal));
    CTRD_RETURN_IF_ERROR(defaults.string_map("Labels", out.labels));
  }

  const json* rootfs = nullptr;
  CTRD_RETURN_IF_ERROR(fields.object("rootfs", rootfs));
  if (rootfs != nullptr) {
    const ObjectReader layers(*rootfs, fields.path("rootfs"));
    CTRD_RETURN_IF_ERROR(layers.string("type", out.rootfs_type));
    CTRD_RETURN_IF_ERROR(layers.strings("diff_ids", out.diff_ids));
    for (size_t i = 0; i < out.diff_ids.size(); ++i) {
      if (Status s = content::validate_digest(out.diff_ids[i]); !s.ok()) {
        return s.with_context(layers.path("diff_ids[" + std::to_string(i) + "]"));
      }
    }
  }
  return out;
}

// Runs a parser with nlohmann's exceptions (which the readers above should
// never let happen) turned into a Status, so none leaves the module.
template <typename Parse>
auto guarded(std::string_view what, Parse parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const json::exception& e) {
    return errdefs::InvalidArgument(std::string(what) + ": " + e.what());
  }
}

// The entry of `index` a host of `matcher` takes, as containerd orders them:
// the best-ranked entry that states a matching platform (the first of equals),
// else the first that states none; nullptr when there is neither.
const IndexEntry* pick_entry(const Index& index, const PlatformMatcher& matcher) {
  const IndexEntry* best = nullptr;
  std::optional<size_t> best_rank;
  const IndexEntry* first_unstated = nullptr;
  for (const IndexEntry& entry : index.manifests) {
    if (!entry.platform) {
      if (first_unstated == nullptr) first_unstated = &entry;
      continue;
    }
    auto rank = matcher.rank(*entry.platform);
    if (rank && (!best_rank || *rank < *best_rank)) {
      best = &entry;
      best_rank = rank;
    }
  }
  return best != nullptr ? best : first_unstated;
}

Status no_match(const content::Descriptor& target, const Platform& platform) {
  return errdefs::NotFound("no match for platform in manifest " + target.digest + " (want " +
                           format(normalize(platform)) + ")");
}

// Adds `size` to `sum`; false when the sum would overflow.
bool add_size(int64_t& sum, int64_t size) { return !__builtin_add_overflow(sum, size, &sum); }

}  // namespace

bool is_index_type(std::string_view media_type) {
  return media_type == kMediaTypeOciIndex || media_type == kMediaTypeDockerManifestList;
}

bool is_manifest_type(std::string_view media_type) {
  return media_type == kMediaTypeOciManifest || media_type == kMediaTypeDockerManifest;
}

bool is_config_type(std::string_view media_type) {
  return media_type == kMediaTypeOciConfig || media_type == kMediaTypeDockerConfig;
}

bool is_layer_type(std::string_view media_type) {
  if (media_type.starts_with("application/vnd.oci.image.layer.")) return true;
  const std::string_view base = media_type.substr(0, media_type.find('+'));
  return base == kMediaTypeDockerLayer || base == kMediaTypeDockerLayerGzip ||
         base == kMediaTypeDockerLayerForeign || base == kMediaTypeDockerLayerForeignGzip;
}

StatusOr<std::string> read_blob(Provider& provider, const content::Descriptor& descriptor, int64_t max_size) {
  const std::string what = describe(descriptor);
  if (Status s = content::validate_digest(descriptor.digest); !s.ok()) return s;
  if (descriptor.size < 0) {
    return errdefs::InvalidArgument(what + ": negative size " + std::to_string(descriptor.size));
  }
  auto over_limit = [&](int64_t size) {
    return errdefs::ResourceExhausted(what + ": " + std::to_string(size) + " bytes, over the limit of " +
                                      std::to_string(max_size));
  };
  if (descriptor.size > max_size) return over_limit(descriptor.size);

  auto reader = provider.reader_at(descriptor.digest);
  if (!reader.ok()) return reader.status().with_context("read " + what);
  const int64_t stored = (*reader)->size();
  if (stored > max_size) return over_limit(stored);
  if (stored != descriptor.size) {
    return errdefs::DataLoss(what + ": the store holds " + std::to_string(stored) +
                             " bytes, the descriptor says " + std::to_string(descriptor.size));
  }

  std::string data(static_cast<size_t>(stored), '\0');
  size_t done = 0;
  while (done < data.size()) {
    auto n = (*reader)->read_at(data.data() + done, data.size() - done, static_cast<int64_t>(done));
    if (!n.ok()) return n.status().with_context("read " + what);
    if (*n == 0) return errdefs::DataLoss(what + ": ends after " + std::to_string(done) + " bytes");
    done += *n;
  }
  // The store verified the digest when the blob was committed; checking again
  // costs little for documents and catches a damaged or substituted file.
  digest::Sha256 hash;
  hash.update(data);
  if (hash.digest() != descriptor.digest) {
    return errdefs::DataLoss(what + ": content has digest " + hash.digest());
  }
  return data;
}

StatusOr<Manifest> parse_manifest(std::string_view json, std::string_view media_type) {
  return guarded("manifest", [&] { return parse_manifest_unchecked(json, media_type); });
}

StatusOr<Index> parse_index(std::string_view json, std::string_view media_type) {
  return guarded("index", [&] { return parse_index_unchecked(json, media_type); });
}

StatusOr<ImageConfig> parse_image_config(std::string_view json) {
  return guarded("image config", [&] { return parse_image_config_unchecked(json); });
}

StatusOr<ImageConfig> read_image_config(Provider& provider, const content::Descriptor& config) {
  CTRD_ASSIGN_OR_RETURN(std::string blob, read_blob(provider, config, kMaxConfigSize));
  auto parsed = parse_image_config(blob);
  if (!parsed.ok()) return parsed.status().with_context(config.digest);
  return parsed;
}

StatusOr<ResolvedManifest> resolve_manifest(Provider& provider, const content::Descriptor& target,
                                            const Platform& platform) {
  const PlatformMatcher matcher(platform);
  ResolvedManifest out;
  content::Descriptor current = target;
  // An index entry that names no platform is checked against its config below.
  bool platform_stated = true;
  while (is_index_type(current.media_type)) {
    if (out.indexes.size() >= static_cast<size_t>(kMaxIndexDepth)) {
      return errdefs::ResourceExhausted("image " + target.digest + ": indexes nested deeper than " +
                                        std::to_string(kMaxIndexDepth));
    }
    CTRD_ASSIGN_OR_RETURN(std::string blob, read_blob(provider, current, kMaxManifestSize));
    auto index = parse_index(blob, current.media_type);
    if (!index.ok()) return index.status().with_context(current.digest);
    out.indexes.push_back(current);
    const IndexEntry* entry = pick_entry(*index, matcher);
    if (entry == nullptr) return no_match(target, platform);
    current = entry->descriptor;
    platform_stated = entry->platform.has_value();
  }
  if (!is_manifest_type(current.media_type)) {
    return errdefs::NotFound("unexpected media type " + errdefs::quoted(current.media_type) + " for " +
                             current.digest);
  }

  CTRD_ASSIGN_OR_RETURN(std::string blob, read_blob(provider, current, kMaxManifestSize));
  auto manifest = parse_manifest(blob, current.media_type);
  if (!manifest.ok()) return manifest.status().with_context(current.digest);
  if (!platform_stated) {
    // As containerd, only os and architecture count here: a config's variant
    // is rarely set, and arm without one reads as v7.
    CTRD_ASSIGN_OR_RETURN(ImageConfig config, read_image_config(provider, manifest->config));
    if (!matcher.matches({config.os, config.architecture, ""})) return no_match(target, platform);
  }
  out.descriptor = std::move(current);
  out.manifest = std::move(manifest).value();
  return out;
}

StatusOr<ResolvedImage> resolve(Provider& provider, const content::Descriptor& target,
                                const Platform& platform) {
  CTRD_ASSIGN_OR_RETURN(ResolvedManifest resolved, resolve_manifest(provider, target, platform));
  Manifest& manifest = resolved.manifest;
  const std::string& manifest_digest = resolved.descriptor.digest;
  if (!is_config_type(manifest.config.media_type)) {
    return errdefs::InvalidArgument("manifest " + manifest_digest + ": config media type " +
                                    errdefs::quoted(manifest.config.media_type) + " is not an image config");
  }
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    if (!is_layer_type(manifest.layers[i].media_type)) {
      return errdefs::InvalidArgument("manifest " + manifest_digest + ": layer " + std::to_string(i) +
                                      " has media type " + errdefs::quoted(manifest.layers[i].media_type) +
                                      ", not a layer's");
    }
  }
  CTRD_ASSIGN_OR_RETURN(ImageConfig config, read_image_config(provider, manifest.config));
  if (config.diff_ids.size() != manifest.layers.size()) {
    return errdefs::InvalidArgument("image config " + manifest.config.digest + " has " +
                                    std::to_string(config.diff_ids.size()) + " diff ids for the " +
                                    std::to_string(manifest.layers.size()) + " layers of manifest " +
                                    manifest_digest);
  }

  ResolvedImage image;
  // containerd's Image.Size counts every descriptor it walks, the indexes
  // included, by the size the descriptor states.
  bool fits = add_size(image.size, resolved.descriptor.size) && add_size(image.size, manifest.config.size);
  for (const auto& index : resolved.indexes) fits = fits && add_size(image.size, index.size);
  for (const auto& layer : manifest.layers) fits = fits && add_size(image.size, layer.size);
  if (!fits) return errdefs::InvalidArgument("image " + target.digest + ": total size overflows");

  image.manifest = std::move(resolved.descriptor);
  image.config = std::move(manifest.config);
  image.layers = std::move(manifest.layers);
  image.diff_ids = config.diff_ids;
  image.config_data = std::move(config);
  return image;
}

}  // namespace ctrd::images
