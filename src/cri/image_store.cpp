#include "cri/image_store.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "cri/cri_service.h"
#include "log/log.h"
#include "metadata/db.h"
#include "services/images/images.h"

namespace ctrd::cri {
namespace {

constexpr std::string_view kPinnedLabel = "io.cri-containerd.pinned";
constexpr std::string_view kDockerDomain = "docker.io";

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_id(std::string_view ref) {
  return ref.starts_with("sha256:") && ref.size() == 71 && is_hex(ref.substr(7));
}

// A repository path component: lowercase alphanumerics, separated by '.', '_', '__' or '-'s.
bool valid_path_component(std::string_view c) {
  if (c.empty() || !std::isalnum(static_cast<unsigned char>(c.front())) ||
      !std::isalnum(static_cast<unsigned char>(c.back())))
    return false;
  return std::all_of(c.begin(), c.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
  });
}

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128 || tag.front() == '.' || tag.front() == '-') return false;
  return std::all_of(tag.begin(), tag.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
  });
}

}  // namespace

ImageUser image_user(const std::string& user) {
  const std::string name = user.substr(0, user.find(':'));
  if (name.empty()) return {};
  int64_t uid = 0;
  const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), uid);
  if (err == std::errc() && end == name.data() + name.size()) return ImageUser{.uid = uid, .username = ""};
  return ImageUser{.uid = std::nullopt, .username = name};
}

errdefs::StatusOr<std::string> normalize_reference(const std::string& ref) {
  const auto invalid = [&] {
    return errdefs::InvalidArgument("invalid image reference " + errdefs::quoted(ref));
  };
  if (is_id(ref)) return ref;
  if (ref.size() == 64 && is_hex(ref)) return "sha256:" + ref;
  std::string name = ref;
  std::string digest;
  if (const size_t at = name.find('@'); at != std::string::npos) {
    digest = name.substr(at + 1);
    name.resize(at);
    if (!is_id(digest)) return invalid();
  }
  std::string tag;
  const size_t slash = name.rfind('/');
  if (const size_t colon = name.rfind(':');
      colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name.resize(colon);
    if (!valid_tag(tag)) return invalid();
  }
  std::string domain;
  std::string path = name;
  if (const size_t first = name.find('/'); first != std::string::npos) {
    const std::string head = name.substr(0, first);
    if (head.find_first_of(".:") != std::string::npos || head == "localhost" ||
        std::any_of(head.begin(), head.end(),
                    [](char c) { return std::isupper(static_cast<unsigned char>(c)); })) {
      domain = head;
      path = name.substr(first + 1);
    }
  }
  if (domain.empty() || domain == "index.docker.io") domain = std::string(kDockerDomain);
  if (domain == kDockerDomain && path.find('/') == std::string::npos) path = "library/" + path;
  size_t start = 0;
  while (true) {
    const size_t end = path.find('/', start);
    if (!valid_path_component(
            std::string_view(path).substr(start, end == std::string::npos ? end : end - start)))
      return invalid();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::string out = domain + "/" + path;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  if (tag.empty() && digest.empty()) out += ":latest";
  return out;
}

ImageStore::ImageStore(std::shared_ptr<metadata::DB> db,
                       std::shared_ptr<services::images::ImagesService> images,
                       ctrd::images::Platform platform)
    : db_(std::move(db)), images_(std::move(images)), platform_(std::move(platform)) {}

errdefs::StatusOr<ctrd::images::ResolvedImage> ImageStore::resolve(const content::Descriptor& target) {
  {
    std::lock_guard lock(mu_);
    if (auto it = resolved_.find(target.digest); it != resolved_.end()) return it->second;
  }
  auto store = db_->content_store(std::string(kNamespace));
  ctrd::images::StoreProvider provider(*store);
  CTRD_ASSIGN_OR_RETURN(ctrd::images::ResolvedImage resolved,
                        ctrd::images::resolve(provider, target, platform_));
  std::lock_guard lock(mu_);
  resolved_.emplace(target.digest, resolved);
  return resolved;
}

errdefs::StatusOr<std::map<std::string, CriImage>> ImageStore::group_by_id() {
  CTRD_ASSIGN_OR_RETURN(auto records, images_->list(std::string(kNamespace), {}));
  std::map<std::string, CriImage> by_id;
  for (const auto& record : records) {
    auto resolved = resolve(record.target);
    if (!resolved.ok()) {
      log::debug("image record left out of the CRI view",
                 {{"name", record.name}, {"error", resolved.status().message()}});
      continue;
    }
    CriImage& image = by_id[resolved->config.digest];
    if (image.id.empty()) {
      image.id = resolved->config.digest;
      image.size = static_cast<uint64_t>(resolved->size);
      image.config = resolved->config_data;
    }
    image.record_names.push_back(record.name);
    if (auto label = record.labels.find(std::string(kPinnedLabel));
        label != record.labels.end() && label->second == "pinned")
      image.pinned = true;
    if (record.name == image.id) continue;
    (record.name.find('@') != std::string::npos ? image.repo_digests : image.repo_tags)
        .push_back(record.name);
  }
  return by_id;
}

errdefs::StatusOr<std::vector<CriImage>> ImageStore::list() {
  CTRD_ASSIGN_OR_RETURN(auto by_id, group_by_id());
  std::vector<CriImage> out;
  out.reserve(by_id.size());
  for (auto& [id, image] : by_id) out.push_back(std::move(image));
  return out;
}

errdefs::StatusOr<CriImage> ImageStore::get(const std::string& ref) {
  CTRD_ASSIGN_OR_RETURN(auto by_id, group_by_id());
  auto normalized = normalize_reference(ref);
  for (auto& [id, image] : by_id) {
    const auto& names = image.record_names;
    if (id == ref || std::find(names.begin(), names.end(), ref) != names.end()) return std::move(image);
    if (normalized.ok() &&
        (id == *normalized || std::find(names.begin(), names.end(), *normalized) != names.end()))
      return std::move(image);
  }
  return errdefs::NotFound("image " + errdefs::quoted(ref) + " not found");
}

errdefs::Status ImageStore::remove(const std::string& ref) {
  auto image = get(ref);
  if (image.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
  CTRD_RETURN_IF_ERROR(image.status());
  const auto& names = image->record_names;
  for (size_t i = 0; i < names.size(); ++i) {
    // The last removal waits for the collector, so the space is free when
    // the kubelet's image GC sees the call return.
    errdefs::Status removed = images_->remove(std::string(kNamespace), names[i], i + 1 == names.size());
    if (!removed.ok() && removed.code() != errdefs::Code::kNotFound) return removed;
  }
  return errdefs::Status::Ok();
}

}  // namespace ctrd::cri
