// images/platform: which platform an image manifest is for, the host's own, and
// containerd's rules (platforms.Only) for which manifests a host can run and in
// what order it prefers them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctrd::images {

// OCI's platform, with Go's names (GOOS/GOARCH): "linux", "amd64", "arm" "v7".
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;  // empty when the architecture has none
  bool operator==(const Platform&) const = default;
};

// containerd's platforms.Normalize: lowercase; an empty os is "linux";
// aliases such as x86_64/aarch64/armhf become their Go names; variants that
// mean the architecture's baseline are dropped (arm64 "v8", amd64 "v1") and
// arm without one is "v7".
Platform normalize(Platform platform);

// "os/architecture[/variant]", as containerd's platforms.Format.
std::string format(const Platform& platform);

// The platform of a kernel machine name (uname -m) in Go's names: x86_64 is
// amd64, aarch64 is arm64 "v8", armv7l is arm "v7", and so on. An unknown
// name is kept as it is, so matching still works for an exact match.
Platform platform_for_machine(std::string_view machine);

// This host: linux and the machine uname reports.
Platform host_platform();

// Decides which platforms a host of `platform` runs, best first, as
// containerd's platforms.Only: the platform itself, then what it runs too —
// amd64 runs lower amd64 variants and 386; arm vN runs arm vN-1 down to v5;
// arm64 runs 32-bit arm v8 down to v5.
class PlatformMatcher {
 public:
  explicit PlatformMatcher(const Platform& platform);

  // Position of `candidate` in the order of preference (0 is best), or nullopt
  // when the host cannot run it. `candidate` is normalized first.
  std::optional<size_t> rank(const Platform& candidate) const;
  bool matches(const Platform& candidate) const { return rank(candidate).has_value(); }

  // The accepted platforms, normalized, best first.
  const std::vector<Platform>& accepted() const { return accepted_; }

 private:
  std::vector<Platform> accepted_;
};

}  // namespace ctrd::images
