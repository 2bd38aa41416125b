#include "services/introspection/introspection.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "filters/filters.h"
#include "os/dirs.h"

namespace ctrd::services::introspection {
namespace {

bool looks_like_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

std::string random_uuid() {
  std::array<unsigned char, 16> b{};
  std::random_device rd;
  for (auto& x : b) x = static_cast<unsigned char>(rd());
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0xf];
  }
  return out;
}

}  // namespace

IntrospectionService::IntrospectionService(std::shared_ptr<const plugin::Set> plugins, std::string root)
    : plugins_(std::move(plugins)), root_(std::move(root)) {}

errdefs::StatusOr<std::vector<const plugin::Plugin*>> IntrospectionService::plugins(
    const std::vector<std::string>& filter_texts) const {
  auto filter = filters::parse_all(filter_texts);
  if (!filter.ok()) return errdefs::InvalidArgument(filter.status().message());
  auto set = plugins_.lock();
  if (!set) return errdefs::Unavailable("server is shutting down");
  std::vector<const plugin::Plugin*> out;
  for (const auto& p : set->ordered()) {
    const auto& r = p->registration();
    auto adaptor = [&r](const std::vector<std::string>& path) -> std::optional<std::string> {
      if (path.empty()) return std::nullopt;
      if (path[0] == "type") return r.type;
      if (path[0] == "id") return r.id;
      return std::nullopt;
    };
    if (filter->match(adaptor)) out.push_back(p.get());
  }
  return out;
}

errdefs::StatusOr<std::string> IntrospectionService::uuid() {
  std::lock_guard lock(mu_);
  if (!uuid_.empty()) return uuid_;
  const std::string path = root_ + "/uuid";
  if (std::ifstream in(path); in) {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (!looks_like_uuid(text)) return errdefs::DataLoss(path + " does not hold a UUID");
    uuid_ = text;
    return uuid_;
  }
  CTRD_RETURN_IF_ERROR(os::ensure_dir(root_, 0700));
  std::string fresh = random_uuid();
  // Written to a temporary name and renamed, so a crash never leaves half a UUID.
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errdefs::FromErrno(errno, "create " + tmp);
  bool ok = ::write(fd, fresh.data(), fresh.size()) == static_cast<ssize_t>(fresh.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return errdefs::FromErrno(errno, "write " + path);
  }
  uuid_ = fresh;
  return uuid_;
}

}  // namespace ctrd::services::introspection
