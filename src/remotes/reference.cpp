#include "remotes/reference.h"

#include <algorithm>

#include "content/content.h"

namespace ctrd::remotes {
namespace {

using errdefs::StatusOr;

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// distribution/reference's path component: [a-z0-9]+ joined by ".", "_",
// "__" or any run of "-".
bool valid_path_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool dashes = std::all_of(sep.begin(), sep.end(), [](char x) { return x == '-'; });
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

// A domain: dot-separated labels of [A-Za-z0-9-] (not starting or ending in
// '-'), or a bracketed IPv6 literal, then an optional :port.
bool valid_domain(std::string_view d) {
  std::string_view host = d;
  if (!d.empty() && d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!is_hex(c) && !(c >= 'A' && c <= 'F') && c != ':' && c != '.') return false;
    }
    host = {};
    d.remove_prefix(close + 1);
  } else {
    size_t colon = d.find(':');
    host = d.substr(0, colon);
    d = colon == std::string_view::npos ? std::string_view{} : d.substr(colon);
    if (host.empty()) return false;
  }
  if (!d.empty()) {  // ":port"
    if (d.front() != ':' || d.size() == 1) return false;
    if (!std::all_of(d.begin() + 1, d.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  }
  while (!host.empty()) {
    size_t dot = host.find('.');
    std::string_view label = host.substr(0, dot);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; }))
      return false;
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
    if (host.empty()) return false;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength) return false;
  if (!(is_alnum(t.front()) || t.front() == '_')) return false;
  return std::all_of(t.begin(), t.end(),
                     [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

}  // namespace

std::string Reference::string() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string hostname_of(std::string_view domain) {
  if (!domain.empty() && domain.front() == '[') {
    size_t close = domain.find(']');
    return std::string(domain.substr(1, close == std::string_view::npos ? domain.npos : close - 1));
  }
  return std::string(domain.substr(0, domain.find(':')));
}

StatusOr<Reference> parse_reference(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return errdefs::InvalidArgument("invalid reference " + errdefs::quoted(text) + ": " + std::string(why));
  };
  if (text.empty()) return invalid("empty");
  if (text.size() == 64 && std::all_of(text.begin(), text.end(), is_hex)) {
    return invalid("a 64-character hexadecimal string is an image id, not a repository name");
  }

  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (!content::validate_digest(ref.digest).ok()) return invalid("digest is not sha256:<64 lowercase hex>");
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' after the last '/'; an earlier ':' is a port.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!valid_tag(ref.tag)) return invalid("bad tag " + errdefs::quoted(ref.tag));
    rest = rest.substr(0, colon);
  }

  std::string_view path = rest;
  size_t first_slash = rest.find('/');
  std::string_view first = rest.substr(0, first_slash);
  if (first_slash != std::string_view::npos &&
      (first.find_first_of(".:") != std::string_view::npos || first == "localhost")) {
    if (!valid_domain(first)) return invalid("bad domain " + errdefs::quoted(first));
    ref.domain = std::string(first);
    path = rest.substr(first_slash + 1);
  } else {
    ref.domain = std::string(kDefaultDomain);
  }
  if (ref.domain == "index.docker.io") ref.domain = std::string(kDefaultDomain);
  if (path.empty()) return invalid("empty repository");
  if (std::any_of(path.begin(), path.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return invalid("repository name must be lowercase");
  }
  for (std::string_view p = path;;) {
    size_t s = p.find('/');
    if (!valid_path_component(p.substr(0, s))) return invalid("bad repository path " + errdefs::quoted(path));
    if (s == std::string_view::npos) break;
    p.remove_prefix(s + 1);
  }
  ref.repository = std::string(path);
  if (ref.domain == kDefaultDomain && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.name().size() > kMaxNameLength) return invalid("name longer than 255 characters");
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = std::string(kDefaultTag);
  return ref;
}

}  // namespace ctrd::remotes
