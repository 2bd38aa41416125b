#include "images/platform.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>

namespace ctrd::images {
namespace {

std::string lowercase(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// N of a "vN" (or "N") variant; nullopt when it is not a plain number.
std::optional<int> variant_number(std::string_view variant) {
  if (variant.starts_with('v')) variant.remove_prefix(1);
  if (variant.empty() || variant.size() > 3) return std::nullopt;
  int n = 0;
  for (char c : variant) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// containerd's platformVector: what a host of `p` (normalized) runs, best first.
void append_runnable(const Platform& p, std::vector<Platform>& out) {
  out.push_back(p);
  if (p.architecture == "amd64") {
    // amd64 v3 runs v2 and v1 code, and every amd64 runs 32-bit x86.
    if (auto level = variant_number(p.variant); level && *level > 1) {
      for (int v = *level - 1; v >= 1; --v) out.push_back({p.os, "amd64", "v" + std::to_string(v)});
    }
    out.push_back({p.os, "386", ""});
  } else if (p.architecture == "arm") {
    // Each arm version runs the code of the older ones, down to v5.
    if (auto version = variant_number(p.variant); version && *version > 5) {
      for (int v = *version - 1; v >= 5; --v) out.push_back({p.os, "arm", "v" + std::to_string(v)});
    }
  } else if (p.architecture == "arm64") {
    // arm64 cores run 32-bit arm of the same version (normalized arm64 has
    // dropped its baseline "v8").
    append_runnable({p.os, "arm", p.variant.empty() ? "v8" : p.variant}, out);
  }
}

}  // namespace

Platform normalize(Platform p) {
  p.os = lowercase(std::move(p.os));
  if (p.os.empty()) p.os = "linux";
  if (p.os == "macos") p.os = "darwin";

  p.architecture = lowercase(std::move(p.architecture));
  p.variant = lowercase(std::move(p.variant));
  const std::string& arch = p.architecture;
  if (arch == "i386") {
    p = {p.os, "386", ""};
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    p.architecture = "amd64";
    if (p.variant == "v1") p.variant.clear();
  } else if (arch == "aarch64" || arch == "arm64") {
    p.architecture = "arm64";
    if (p.variant == "8" || p.variant == "v8") p.variant.clear();
  } else if (arch == "armhf") {
    p = {p.os, "arm", "v7"};
  } else if (arch == "armel") {
    p = {p.os, "arm", "v6"};
  } else if (arch == "arm") {
    if (p.variant.empty() || p.variant == "7") {
      p.variant = "v7";
    } else if (p.variant == "5" || p.variant == "6" || p.variant == "8") {
      p.variant = "v" + p.variant;
    }
  }
  return p;
}

std::string format(const Platform& platform) {
  if (platform.os.empty()) return "unknown";
  std::string out = platform.os;
  for (const std::string* part : {&platform.architecture, &platform.variant}) {
    if (!part->empty()) out += "/" + *part;
  }
  return out;
}

Platform platform_for_machine(std::string_view machine) {
  const std::string m = lowercase(std::string(machine));
  if (m == "x86_64" || m == "amd64") return {"linux", "amd64", ""};
  if (m == "i386" || m == "i486" || m == "i586" || m == "i686") return {"linux", "386", ""};
  if (m == "aarch64" || m == "arm64") return {"linux", "arm64", "v8"};
  // 32-bit arm kernels report "armv<N>l" (or "b"); armv8l is a 32-bit
  // userland on an ARMv8 core.
  if (m.starts_with("armv") && m.size() >= 5 && std::isdigit(static_cast<unsigned char>(m[4]))) {
    return {"linux", "arm", std::string("v") + m[4]};
  }
  if (m == "loongarch64") return {"linux", "loong64", ""};
  return {"linux", m, ""};
}

Platform host_platform() {
  struct utsname name {};
  if (::uname(&name) != 0) return {"linux", "amd64", ""};  // uname cannot fail on Linux; a safe default
  return platform_for_machine(name.machine);
}

PlatformMatcher::PlatformMatcher(const Platform& platform) {
  append_runnable(normalize(platform), accepted_);
  // containerd compares against normalized platforms ("v1" of amd64 is "").
  for (Platform& p : accepted_) p = normalize(std::move(p));
}

std::optional<size_t> PlatformMatcher::rank(const Platform& candidate) const {
  const Platform wanted = normalize(candidate);
  for (size_t i = 0; i < accepted_.size(); ++i) {
    if (accepted_[i] == wanted) return i;
  }
  return std::nullopt;
}

}  // namespace ctrd::images
