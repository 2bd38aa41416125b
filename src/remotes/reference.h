// remotes/reference: image references as containerd and Docker read them
// ("busybox", "registry:5000/team/app:1.2", "app@sha256:..."), normalized
// the Docker way: a first component without '.' or ':' (and not "localhost")
// is a path on docker.io, and a single-component docker.io name is under
// "library/". A reference with neither tag nor digest means ":latest".
#pragma once

#include <string>
#include <string_view>

#include "errdefs/errdefs.h"

namespace ctrd::remotes {

inline constexpr std::string_view kDefaultDomain = "docker.io";
inline constexpr std::string_view kDefaultTag = "latest";

struct Reference {
  std::string domain;      // "docker.io", "127.0.0.1:5000"
  std::string repository;  // the path below the domain: "library/busybox"
  std::string tag;         // empty only when a digest is given without a tag
  std::string digest;      // "sha256:<hex>" or empty

  // "docker.io/library/busybox"
  std::string name() const { return domain + "/" + repository; }
  // The fully qualified form: name, ":tag" when set, "@digest" when set.
  std::string string() const;
  // What the manifests endpoint is asked for: the digest when there is one
  // (it pins the content), else the tag.
  std::string object() const { return digest.empty() ? tag : digest; }
  bool operator==(const Reference&) const = default;
};

// InvalidArgument naming the reference when it does not parse: an empty or
// upper-case repository, a bad tag, a digest other than a well-formed sha256,
// a name over 255 characters, or a bare 64-hex string (an image id, which
// Docker refuses as a name).
errdefs::StatusOr<Reference> parse_reference(std::string_view text);

// The host part of a domain, without the port ("127.0.0.1:5000" -> "127.0.0.1");
// brackets of an IPv6 literal are kept off too.
std::string hostname_of(std::string_view domain);

}  // namespace ctrd::remotes
