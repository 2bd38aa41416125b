#include "metadata/labels.h"

#include <string>

namespace ctrd::metadata {

errdefs::Status validate_label(std::string_view key, std::string_view value) {
  if (key.size() + value.size() <= kMaxLabelSize) return errdefs::Status::Ok();
  return errdefs::InvalidArgument("label key and value greater than maximum size (" +
                                  std::to_string(kMaxLabelSize) +
                                  " bytes), key: " + std::string(key.substr(0, 10)));
}

errdefs::Status validate_labels(const content::Labels& labels, std::string_view field) {
  for (const auto& [key, value] : labels) {
    if (auto s = validate_label(key, value); !s.ok()) return s.with_context(field);
  }
  return errdefs::Status::Ok();
}

void drop_empty_labels(content::Labels* labels) {
  std::erase_if(*labels, [](const auto& kv) { return kv.second.empty(); });
}

std::optional<std::string> label_field(const std::vector<std::string>& fieldpath,
                                       const content::Labels& labels) {
  if (labels.empty()) return std::nullopt;
  std::string key;
  for (size_t i = 1; i < fieldpath.size(); ++i) key += (i > 1 ? "." : "") + fieldpath[i];
  auto it = labels.find(key);
  if (it == labels.end()) return std::nullopt;
  return it->second;
}

bool apply_label_path(std::string_view path, const content::Labels& given, content::Labels* stored) {
  constexpr std::string_view kPrefix = "labels.";
  if (path == "labels") {
    *stored = given;
    return true;
  }
  if (!path.starts_with(kPrefix)) return false;
  std::string key(path.substr(kPrefix.size()));
  auto it = given.find(key);
  (*stored)[key] = it == given.end() ? std::string() : it->second;
  return true;
}

}  // namespace ctrd::metadata
