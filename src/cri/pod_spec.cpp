#include "cri/pod_spec.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>

#include "cri/seccomp_profile.h"
#include "oci/spec.h"

namespace ctrd::cri {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::runtime::v1;
using nlohmann::json;

// The annotations the CRI plugin puts on every spec (containerd's pkg/cri/annotations).
constexpr const char* kContainerType = "io.kubernetes.cri.container-type";
constexpr const char* kSandboxId = "io.kubernetes.cri.sandbox-id";
constexpr const char* kSandboxNamespace = "io.kubernetes.cri.sandbox-namespace";
constexpr const char* kSandboxUid = "io.kubernetes.cri.sandbox-uid";
constexpr const char* kSandboxName = "io.kubernetes.cri.sandbox-name";
constexpr const char* kSandboxLogDir = "io.kubernetes.cri.sandbox-log-directory";
constexpr const char* kSandboxCpuPeriod = "io.kubernetes.cri.sandbox-cpu-period";
constexpr const char* kSandboxCpuQuota = "io.kubernetes.cri.sandbox-cpu-quota";
constexpr const char* kSandboxCpuShares = "io.kubernetes.cri.sandbox-cpu-shares";
constexpr const char* kSandboxMemory = "io.kubernetes.cri.sandbox-memory";
constexpr const char* kContainerName = "io.kubernetes.cri.container-name";
constexpr const char* kImageName = "io.kubernetes.cri.image-name";

// The sandbox's pause process should be the last thing the OOM killer picks.
constexpr int kSandboxOomScoreAdj = -998;
// The sandbox's own CPU weight: it only waits, so it gets the minimum.
constexpr uint64_t kSandboxDefaultCpuShares = 2;

constexpr const char* kDevShm = "/dev/shm";
constexpr const char* kEtcHostname = "/etc/hostname";
constexpr const char* kEtcHosts = "/etc/hosts";
constexpr const char* kResolvConf = "/etc/resolv.conf";

// Lexical cleaning of an absolute path as Go's filepath.Clean, so "/etc/hosts/"
// and "/etc//hosts" name the same destination.
std::string clean_path(const std::string& path) {
  if (path.empty()) return ".";
  std::string out = fs::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// A whole decimal number, as Go's strconv.Atoi accepts it (sign allowed).
std::optional<int64_t> parse_int(std::string_view text) {
  if (text.starts_with('+')) text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.emplace_back(
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string trim(std::string_view text) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  auto begin = std::find_if(text.begin(), text.end(), not_space);
  auto end = std::find_if(text.rbegin(), text.rend(), not_space).base();
  return begin < end ? std::string(begin, end) : std::string();
}

// ---------------------------------------------------------------------------
// Annotation patterns (Go's path.Match).

// Reads one character of a [class], handling \ escapes; nullopt if malformed.
std::optional<char> class_char(std::string_view& pattern) {
  if (pattern.empty() || pattern[0] == '-' || pattern[0] == ']') return std::nullopt;
  if (pattern[0] == '\\') {
    pattern.remove_prefix(1);
    if (pattern.empty()) return std::nullopt;
  }
  char c = pattern[0];
  pattern.remove_prefix(1);
  return c;
}

// Whether `c` is in the [class] at the front of `pattern` (just past the
// '['), consuming it; nullopt if the class is malformed.
std::optional<bool> match_class(std::string_view& pattern, char c) {
  bool negated = false;
  if (!pattern.empty() && pattern[0] == '^') {
    negated = true;
    pattern.remove_prefix(1);
  }
  bool matched = false;
  int ranges = 0;
  while (true) {
    if (!pattern.empty() && pattern[0] == ']' && ranges > 0) {
      pattern.remove_prefix(1);
      break;
    }
    auto lo = class_char(pattern);
    if (!lo) return std::nullopt;
    char hi = *lo;
    if (!pattern.empty() && pattern[0] == '-') {
      pattern.remove_prefix(1);
      auto upper = class_char(pattern);
      if (!upper) return std::nullopt;
      hi = *upper;
    }
    if (*lo <= c && c <= hi) matched = true;
    ++ranges;
  }
  return matched != negated;
}

// nullopt: a malformed pattern.
std::optional<bool> glob_match(std::string_view pattern, std::string_view name) {
  while (!pattern.empty()) {
    if (pattern[0] == '*') {
      while (!pattern.empty() && pattern[0] == '*') pattern.remove_prefix(1);
      if (pattern.empty()) return name.find('/') == std::string_view::npos;
      for (size_t skip = 0; skip <= name.size(); ++skip) {
        auto rest = glob_match(pattern, name.substr(skip));
        if (!rest || *rest) return rest;
        if (skip < name.size() && name[skip] == '/') break;  // * stops at a separator
      }
      return false;
    }
    if (name.empty()) return false;
    const char c = pattern[0];
    pattern.remove_prefix(1);
    if (c == '?') {
      if (name[0] == '/') return false;
    } else if (c == '[') {
      auto in_class = match_class(pattern, name[0]);
      if (!in_class || !*in_class) return in_class;
    } else {
      char literal = c;
      if (c == '\\') {
        if (pattern.empty()) return std::nullopt;
        literal = pattern[0];
        pattern.remove_prefix(1);
      }
      if (literal != name[0]) return false;
    }
    name.remove_prefix(1);
  }
  return name.empty();
}

std::map<std::string, std::string> passthrough_annotations(
    const google::protobuf::Map<std::string, std::string>& annotations,
    const std::vector<std::string>& patterns) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : annotations) {
    for (const std::string& pattern : patterns) {
      if (annotation_pattern_matches(pattern, key)) {
        out[key] = value;
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Users and groups, from the image's /etc/passwd and /etc/group.

struct PasswdEntry {
  std::string name;
  int64_t uid = 0;
  int64_t gid = 0;
};

struct GroupEntry {
  std::string name;
  int64_t gid = 0;
  std::vector<std::string> members;
};

// A file of the rootfs; nullopt when it does not exist.
errdefs::StatusOr<std::optional<std::string>> read_optional(const RootfsFileReader& reader,
                                                            const std::string& path) {
  if (!reader) return std::optional<std::string>();
  auto contents = reader(path);
  if (contents.ok()) return std::optional<std::string>(std::move(contents).value());
  if (errdefs::IsNotFound(contents.status())) return std::optional<std::string>();
  return contents.status().with_context("read " + path + " of the image");
}

// Lines of a colon-separated database, as libcontainer's parser reads them:
// blank lines skipped, missing fields empty, unparsable numbers zero.
std::vector<std::vector<std::string>> database_lines(const std::string& contents) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(contents);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    lines.push_back(split(line, ':'));
  }
  return lines;
}

std::string field(const std::vector<std::string>& fields, size_t i) {
  return i < fields.size() ? fields[i] : "";
}
int64_t number_field(const std::vector<std::string>& fields, size_t i) {
  return parse_int(field(fields, i)).value_or(0);
}

std::vector<PasswdEntry> parse_passwd(const std::string& contents) {
  std::vector<PasswdEntry> users;
  for (const auto& fields : database_lines(contents)) {
    users.push_back({field(fields, 0), number_field(fields, 2), number_field(fields, 3)});
  }
  return users;
}

std::vector<GroupEntry> parse_group(const std::string& contents) {
  std::vector<GroupEntry> groups;
  for (const auto& fields : database_lines(contents)) {
    GroupEntry group{field(fields, 0), number_field(fields, 2), {}};
    if (const std::string list = field(fields, 3); !list.empty()) group.members = split(list, ',');
    groups.push_back(std::move(group));
  }
  return groups;
}

struct UidGid {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// The uid and primary gid a USER string ("name", "uid", "name:group",
// "uid:gid", ...) names in this rootfs, as containerd's oci.WithUser: a bare
// uid without a passwd entry gets gid 0; a name that is not found is an error.
errdefs::StatusOr<UidGid> resolve_user(const std::string& user, const RootfsFileReader& reader) {
  const std::vector<std::string> parts = split(user, ':');
  if (parts.size() > 2) return errdefs::InvalidArgument("invalid USER value " + errdefs::quoted(user));
  CTRD_ASSIGN_OR_RETURN(auto passwd, read_optional(reader, "/etc/passwd"));
  const std::vector<PasswdEntry> users = passwd ? parse_passwd(*passwd) : std::vector<PasswdEntry>{};
  auto find_user = [&](auto matches) -> const PasswdEntry* {
    auto it = std::ranges::find_if(users, matches);
    return it == users.end() ? nullptr : &*it;
  };
  auto no_user = [&](const std::string& name) {
    return errdefs::InvalidArgument("no user " + errdefs::quoted(name) + " in the image's /etc/passwd");
  };

  const std::optional<int64_t> uid = parse_int(parts[0]);
  if (parts.size() == 1) {
    if (uid) {
      const PasswdEntry* entry = find_user([&](const PasswdEntry& u) { return u.uid == *uid; });
      return UidGid{static_cast<uint32_t>(*uid), entry ? static_cast<uint32_t>(entry->gid) : 0};
    }
    const PasswdEntry* entry = find_user([&](const PasswdEntry& u) { return u.name == parts[0]; });
    if (entry == nullptr) return no_user(parts[0]);
    return UidGid{static_cast<uint32_t>(entry->uid), static_cast<uint32_t>(entry->gid)};
  }

  UidGid out;
  if (uid) {
    out.uid = static_cast<uint32_t>(*uid);
  } else {
    const PasswdEntry* entry = find_user([&](const PasswdEntry& u) { return u.name == parts[0]; });
    if (entry == nullptr) return no_user(parts[0]);
    out.uid = static_cast<uint32_t>(entry->uid);
  }
  if (auto gid = parse_int(parts[1])) {
    out.gid = static_cast<uint32_t>(*gid);
  } else {
    CTRD_ASSIGN_OR_RETURN(auto group_file, read_optional(reader, "/etc/group"));
    const std::vector<GroupEntry> groups = group_file ? parse_group(*group_file) : std::vector<GroupEntry>{};
    auto it = std::ranges::find_if(groups, [&](const GroupEntry& g) { return g.name == parts[1]; });
    if (it == groups.end()) {
      return errdefs::InvalidArgument("no group " + errdefs::quoted(parts[1]) + " in the image's /etc/group");
    }
    out.gid = static_cast<uint32_t>(it->gid);
  }
  return out;
}

// The gids of the groups the image's /etc/group lists `user` (a name or a
// uid) as a member of, as containerd's oci.WithAdditionalGIDs.
errdefs::StatusOr<std::vector<uint32_t>> image_groups_of(const std::string& user,
                                                         const RootfsFileReader& reader) {
  std::string name = user;
  if (auto uid = parse_int(user)) {
    CTRD_ASSIGN_OR_RETURN(auto passwd, read_optional(reader, "/etc/passwd"));
    if (!passwd) return std::vector<uint32_t>{};
    const std::vector<PasswdEntry> users = parse_passwd(*passwd);
    auto it = std::ranges::find_if(users, [&](const PasswdEntry& u) { return u.uid == *uid; });
    if (it == users.end()) return std::vector<uint32_t>{};
    name = it->name;
  }
  CTRD_ASSIGN_OR_RETURN(auto group_file, read_optional(reader, "/etc/group"));
  std::vector<uint32_t> gids;
  if (!group_file) return gids;
  for (const GroupEntry& group : parse_group(*group_file)) {
    // A user's own group is its primary one, not a supplementary one.
    if (group.name == name) continue;
    if (std::ranges::find(group.members, name) != group.members.end()) {
      gids.push_back(static_cast<uint32_t>(group.gid));
    }
  }
  return gids;
}

// The USER string the CRI security context asks for (containerd's
// generateUserString): "" when it sets none.
errdefs::StatusOr<std::string> requested_user(const std::string& username, const v1::Int64Value* uid,
                                              const v1::Int64Value* gid) {
  std::string user = uid ? std::to_string(uid->value()) : "";
  if (!username.empty()) user = username;
  if (user.empty()) {
    if (gid != nullptr) {
      return errdefs::InvalidArgument("user group " + std::to_string(gid->value()) +
                                      " is specified without user");
    }
    return std::string();
  }
  if (gid != nullptr) user += ":" + std::to_string(gid->value());
  return user;
}

std::vector<uint32_t> current_additional_gids(const json& spec) {
  const json& user = spec["process"]["user"];
  if (!user.contains("additionalGids")) return {};
  return user["additionalGids"].get<std::vector<uint32_t>>();
}

// Sets process.user.additionalGids to the sorted union of the current ones
// and `gids` (containerd's mergeGids).
void merge_additional_gids(json& spec, const std::vector<uint32_t>& gids) {
  std::set<uint32_t> merged(gids.begin(), gids.end());
  for (uint32_t gid : current_additional_gids(spec)) merged.insert(gid);
  json& user = spec["process"]["user"];
  if (merged.empty()) {
    user.erase("additionalGids");
  } else {
    user["additionalGids"] = std::vector<uint32_t>(merged.begin(), merged.end());
  }
}

std::vector<uint32_t> to_gids(const google::protobuf::RepeatedField<int64_t>& groups) {
  std::vector<uint32_t> gids;
  for (int64_t g : groups) gids.push_back(static_cast<uint32_t>(g));
  return gids;
}

// Sets the process user from a USER string; the additional gids start over
// with the primary gid alone, as containerd's oci.WithUser leaves them.
errdefs::Status apply_user(json& spec, const std::string& user, const RootfsFileReader& reader) {
  CTRD_ASSIGN_OR_RETURN(UidGid ids, resolve_user(user, reader));
  oci::set_user(spec, ids.uid, ids.gid, {ids.gid});
  return errdefs::Status::Ok();
}

// ---------------------------------------------------------------------------
// Security profiles.

constexpr std::string_view kLocalhostPrefix = "localhost/";

// A profile named the old way, by a string ("runtime/default", "unconfined",
// "localhost/<path>"); containerd's generateSecurityProfile.
errdefs::StatusOr<v1::SecurityProfile> profile_from_name(const std::string& name) {
  v1::SecurityProfile profile;
  if (name.empty() || name == "runtime/default" || name == "docker/default") {
    profile.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  } else if (name == "unconfined") {
    profile.set_profile_type(v1::SecurityProfile::Unconfined);
  } else if (name.starts_with(kLocalhostPrefix)) {
    profile.set_profile_type(v1::SecurityProfile::Localhost);
    profile.set_localhost_ref(name.substr(kLocalhostPrefix.size()));
  } else {
    return errdefs::InvalidArgument("invalid profile " + errdefs::quoted(name));
  }
  return profile;
}

errdefs::StatusOr<json> load_seccomp_profile_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return errdefs::FromErrno(errno, "cannot load seccomp profile " + errdefs::quoted(path));
  std::stringstream contents;
  contents << file.rdbuf();
  auto profile = parse_seccomp_profile(contents.str());
  if (!profile.ok())
    return profile.status().with_context("decoding seccomp profile " + errdefs::quoted(path));
  return profile;
}

// Sets linux.seccomp as the security context asks: `profile` when the
// request has one, else the deprecated path, else the daemon's
// unset_seccomp_profile; none of them means no filter. A privileged process
// never gets one. The default profile depends on the capabilities, so this
// runs after they are final.
errdefs::Status apply_seccomp(json& spec, const v1::SecurityProfile* profile, const std::string& profile_path,
                              const std::string& unset_profile, bool privileged) {
  oci::set_seccomp_unconfined(spec);
  if (privileged) return errdefs::Status::Ok();
  std::optional<v1::SecurityProfile> chosen;
  if (profile != nullptr) {
    chosen = *profile;
  } else if (!profile_path.empty() || !unset_profile.empty()) {
    CTRD_ASSIGN_OR_RETURN(chosen, profile_from_name(!profile_path.empty() ? profile_path : unset_profile));
  }
  if (!chosen) return errdefs::Status::Ok();
  if (chosen->profile_type() != v1::SecurityProfile::Localhost && !chosen->localhost_ref().empty()) {
    return errdefs::InvalidArgument(
        "seccomp config invalid: localhost_ref must only be set with profile type Localhost");
  }
  switch (chosen->profile_type()) {
    case v1::SecurityProfile::Unconfined:
      return errdefs::Status::Ok();
    case v1::SecurityProfile::RuntimeDefault: {
      const json& bounding = spec["process"]["capabilities"]["bounding"];
      oci::set_seccomp(spec,
                       default_seccomp_profile(bounding.is_array() ? bounding.get<std::vector<std::string>>()
                                                                   : std::vector<std::string>{}));
      return errdefs::Status::Ok();
    }
    case v1::SecurityProfile::Localhost: {
      std::string path = chosen->localhost_ref();
      if (path.starts_with(kLocalhostPrefix)) path = path.substr(kLocalhostPrefix.size());
      CTRD_ASSIGN_OR_RETURN(json loaded, load_seccomp_profile_file(path));
      oci::set_seccomp(spec, loaded);
      return errdefs::Status::Ok();
    }
    default:
      return errdefs::InvalidArgument("seccomp unknown profile type");
  }
}

// ctrd loads no AppArmor profiles, so like containerd on a host without
// AppArmor it refuses a request for one rather than run the container
// unconfined behind the user's back.
errdefs::Status check_apparmor(const v1::LinuxContainerSecurityContext& context) {
  std::optional<v1::SecurityProfile> requested;
  if (context.has_apparmor()) {
    requested = context.apparmor();
  } else if (!context.apparmor_profile().empty()) {
    CTRD_ASSIGN_OR_RETURN(requested, profile_from_name(context.apparmor_profile()));
  }
  if (requested && requested->profile_type() != v1::SecurityProfile::Unconfined) {
    return errdefs::InvalidArgument("apparmor is not supported");
  }
  return errdefs::Status::Ok();
}

// ---------------------------------------------------------------------------
// Mounts and devices.

struct BindRequest {
  std::string container_path;
  std::string host_path;
  bool readonly = false;
  v1::MountPropagation propagation = v1::PROPAGATION_PRIVATE;
};

bool in_cri_mounts(const std::string& destination, const ContainerSpecInput& in) {
  const std::string clean = clean_path(destination);
  return std::ranges::any_of(in.config->mounts(),
                             [&](const v1::Mount& m) { return clean_path(m.container_path()) == clean; });
}

// Decodes the octal escapes (\040 for a space) of a mountinfo path.
std::string unescape_mountinfo(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

bool path_is_under(const std::string& path, const std::string& mount_point) {
  if (mount_point == "/") return true;
  return path == mount_point || (path.starts_with(mount_point) && path[mount_point.size()] == '/');
}

struct MountPoint {
  std::string path;
  std::string optional_fields;
};

// The mount holding `path` (the deepest mount point above it, the last one
// mounted there), from /proc/self/mountinfo.
errdefs::StatusOr<MountPoint> lookup_mount(const std::string& path) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  if (!mountinfo) return errdefs::FromErrno(errno, "open /proc/self/mountinfo");
  std::optional<MountPoint> best;
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, options, optional;
    if (!(fields >> id >> parent >> device >> root >> mount_point >> options)) continue;
    mount_point = unescape_mountinfo(mount_point);
    std::string tag;
    while (fields >> tag && tag != "-") optional += (optional.empty() ? "" : " ") + tag;
    if (!path_is_under(path, mount_point)) continue;
    if (!best || mount_point.size() >= best->path.size()) best = MountPoint{mount_point, optional};
  }
  if (!best) return errdefs::NotFound("no mount holds " + errdefs::quoted(path));
  return *best;
}

// Bidirectional propagation needs the source to be on a shared mount,
// host-to-container a shared or slave one, or the runtime's rshared/rslave
// would silently propagate nothing.
errdefs::Status check_propagation(const ContainerSpecInput& in, const std::string& source, bool need_shared) {
  std::string optional_fields;
  std::string mount_point;
  if (in.mount_propagation) {
    CTRD_ASSIGN_OR_RETURN(optional_fields, in.mount_propagation(source));
    mount_point = source;
  } else {
    CTRD_ASSIGN_OR_RETURN(MountPoint found, lookup_mount(source));
    optional_fields = found.optional_fields;
    mount_point = found.path;
  }
  for (const std::string& tag : split(optional_fields, ' ')) {
    if (tag.starts_with("shared:") || (!need_shared && tag.starts_with("master:")))
      return errdefs::Status::Ok();
  }
  return errdefs::FailedPrecondition("path " + errdefs::quoted(source) + " is mounted on " +
                                     errdefs::quoted(mount_point) + " but it is not a " +
                                     (need_shared ? "shared" : "shared or slave") + " mount");
}

errdefs::StatusOr<std::string> resolve_host_path(const std::string& path) {
  std::error_code ec;
  fs::path resolved = fs::canonical(path, ec);
  if (ec) return errdefs::FromErrno(ec.value(), "resolve symlinks of " + errdefs::quoted(path));
  return resolved.string();
}

// Applies the CRI mounts and the extra ones (sandbox files, image volumes) as
// containerd's WithMounts: a cgroup mount at /sys/fs/cgroup is added, the
// default mounts a requested one covers are dropped (all of /dev/* under a
// /dev mount), and each request becomes an rbind mount of its resolved host
// path, shallowest destination first so that nested mounts land on top.
errdefs::Status apply_mounts(json& spec, const ContainerSpecInput& in,
                             const std::vector<BindRequest>& extra) {
  std::vector<BindRequest> requests;
  for (const v1::Mount& m : in.config->mounts()) {
    requests.push_back({m.container_path(), m.host_path(), m.readonly(), m.propagation()});
  }
  for (const BindRequest& e : extra) {
    if (!in_cri_mounts(e.container_path, in)) requests.push_back(e);
  }
  auto depth = [](const BindRequest& r) { return std::ranges::count(clean_path(r.container_path), '/'); };
  std::ranges::stable_sort(requests, {}, depth);

  json mounts = spec.contains("mounts") ? spec["mounts"] : json::array();
  mounts.push_back({{"destination", "/sys/fs/cgroup"},
                    {"type", "cgroup"},
                    {"source", "cgroup"},
                    {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}});
  std::set<std::string> requested;
  for (const BindRequest& r : requests) requested.insert(clean_path(r.container_path));
  const bool covers_dev = requested.contains("/dev");
  json kept = json::array();
  for (const json& m : mounts) {
    const std::string destination = clean_path(m.value("destination", ""));
    if (requested.contains(destination)) continue;
    if (covers_dev && destination.starts_with("/dev/")) continue;
    kept.push_back(m);
  }

  std::string rootfs_propagation;
  for (const BindRequest& r : requests) {
    CTRD_RETURN_IF_ERROR(oci::validate_mount_destination(r.container_path));
    if (r.host_path.empty()) {
      return errdefs::InvalidArgument("mount " + errdefs::quoted(r.container_path) + " has no host path");
    }
    // A missing host path is made a directory, as containerd does.
    std::error_code ec;
    const fs::file_status status = fs::status(r.host_path, ec);
    if (status.type() == fs::file_type::not_found) {
      fs::create_directories(r.host_path, ec);
      if (ec) return errdefs::FromErrno(ec.value(), "mkdir " + errdefs::quoted(r.host_path));
    } else if (ec) {
      return errdefs::FromErrno(ec.value(), "stat " + errdefs::quoted(r.host_path));
    }
    CTRD_ASSIGN_OR_RETURN(std::string source, resolve_host_path(r.host_path));

    std::vector<std::string> options = {"rbind"};
    switch (r.propagation) {
      case v1::PROPAGATION_BIDIRECTIONAL:
        CTRD_RETURN_IF_ERROR(check_propagation(in, source, /*need_shared=*/true));
        options.push_back("rshared");
        rootfs_propagation = "rshared";
        break;
      case v1::PROPAGATION_HOST_TO_CONTAINER:
        CTRD_RETURN_IF_ERROR(check_propagation(in, source, /*need_shared=*/false));
        options.push_back("rslave");
        if (rootfs_propagation != "rshared") rootfs_propagation = "rslave";
        break;
      default:
        options.push_back("rprivate");
        break;
    }
    options.push_back(r.readonly ? "ro" : "rw");
    kept.push_back(
        {{"destination", r.container_path}, {"type", "bind"}, {"source", source}, {"options", options}});
  }
  spec["mounts"] = std::move(kept);
  // The propagation of a mount inside the container only works if the
  // container's root is at least as open.
  if (!rootfs_propagation.empty()) spec["linux"]["rootfsPropagation"] = rootfs_propagation;
  return errdefs::Status::Ok();
}

// A device node as the spec's linux.devices lists it; nullopt when `path`
// is not a block or character device (FIFOs included, which are skipped).
struct DeviceNode {
  json entry;
  bool is_device = false;
  bool is_fifo = false;
};

errdefs::StatusOr<DeviceNode> device_from_path(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return errdefs::FromErrno(errno, "lstat " + errdefs::quoted(path));
  const char* type = nullptr;
  switch (st.st_mode & S_IFMT) {
    case S_IFBLK:
      type = "b";
      break;
    case S_IFCHR:
      type = "c";
      break;
    case S_IFIFO:
      return DeviceNode{{}, false, true};
    default:
      return DeviceNode{};
  }
  json entry = {{"path", path},
                {"type", type},
                {"major", static_cast<int64_t>(major(st.st_rdev))},
                {"minor", static_cast<int64_t>(minor(st.st_rdev))},
                {"fileMode", static_cast<uint32_t>(st.st_mode & ~S_IFMT)},
                {"uid", st.st_uid},
                {"gid", st.st_gid}};
  return DeviceNode{std::move(entry), true, false};
}

// The device nodes at `path`: the node itself, or every node below a
// directory (as containerd's getDevices, skipping /dev/pts, shm and the like
// and the console), renamed under `container_path` when it is set.
errdefs::Status collect_devices(const std::string& path, const std::string& container_path,
                                std::vector<json>& out) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return errdefs::FromErrno(errno, "error stating device path " + errdefs::quoted(path));
  if (!S_ISDIR(st.st_mode)) {
    CTRD_ASSIGN_OR_RETURN(DeviceNode node, device_from_path(path));
    if (!node.is_device && !node.is_fifo)
      return errdefs::InvalidArgument(errdefs::quoted(path) + " is not a device node");
    if (!container_path.empty()) node.entry["path"] = container_path;
    out.push_back(std::move(node.entry));
    return errdefs::Status::Ok();
  }
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (const auto& entry : fs::directory_iterator(path, ec)) entries.push_back(entry);
  if (ec) return errdefs::FromErrno(ec.value(), "read directory " + errdefs::quoted(path));
  std::ranges::sort(entries, {}, [](const fs::directory_entry& e) { return e.path().filename().string(); });
  static const std::set<std::string> kSkippedDirs = {"pts",  "shm",         "fd",   "mqueue",
                                                     ".lxc", ".lxd-mounts", ".udev"};
  for (const fs::directory_entry& entry : entries) {
    const std::string name = entry.path().filename().string();
    const std::string child_container_path = container_path.empty() ? "" : container_path + "/" + name;
    std::error_code type_ec;
    if (entry.is_directory(type_ec) && !entry.is_symlink(type_ec)) {
      if (kSkippedDirs.contains(name)) continue;
      CTRD_RETURN_IF_ERROR(collect_devices(entry.path().string(), child_container_path, out));
      continue;
    }
    if (name == "console") continue;
    auto node = device_from_path(entry.path().string());
    if (!node.ok()) {
      if (errdefs::IsNotFound(node.status())) continue;
      return node.status();
    }
    if (!node->is_device) continue;
    if (!child_container_path.empty()) node->entry["path"] = child_container_path;
    out.push_back(std::move(node->entry));
  }
  return errdefs::Status::Ok();
}

json& linux_devices(json& spec) {
  json& devices = spec["linux"]["devices"];
  if (devices.is_null()) devices = json::array();
  return devices;
}

json& device_rules(json& spec) {
  json& rules = spec["linux"]["resources"]["devices"];
  if (rules.is_null()) rules = json::array();
  return rules;
}

// The CRI devices: each node is created in the container and the devices
// cgroup allows it with the requested permissions.
errdefs::Status apply_devices(json& spec, const v1::ContainerConfig& config) {
  for (const v1::Device& device : config.devices()) {
    CTRD_ASSIGN_OR_RETURN(std::string host_path, resolve_host_path(device.host_path()));
    std::vector<json> nodes;
    CTRD_RETURN_IF_ERROR(collect_devices(host_path, device.container_path(), nodes));
    for (json& node : nodes) {
      json rule = {
          {"allow", true}, {"type", node["type"]}, {"major", node["major"]}, {"minor", node["minor"]}};
      if (!device.permissions().empty()) rule["access"] = device.permissions();
      device_rules(spec).push_back(std::move(rule));
      linux_devices(spec).push_back(std::move(node));
    }
  }
  return errdefs::Status::Ok();
}

// ---------------------------------------------------------------------------
// Shared steps.

// What containerd's CRI strips from its default spec before anything else:
// /run (a tmpfs there would hide the image's), the rlimits, and any
// AppArmor or seccomp setting (the security context decides those).
json base_spec(const std::string& id) {
  json spec = oci::default_unix_spec(id);
  oci::remove_mount(spec, "/run");
  json& process = spec["process"];
  process.erase("rlimits");
  process.erase("apparmorProfile");
  oci::set_seccomp_unconfined(spec);
  spec["root"]["path"] = "rootfs";
  return spec;
}

int restricted_oom_score_adj(int preferred, bool restrict, int daemon_oom_score_adj) {
  // A process may not get a lower score than the daemon's own: the kernel
  // would refuse it to an unprivileged daemon anyway.
  return restrict ? std::max(preferred, daemon_oom_score_adj) : preferred;
}

std::string ns_path(uint32_t pid, const char* type) { return "/proc/" + std::to_string(pid) + "/ns/" + type; }

bool running_in_user_namespace() {
  std::ifstream uid_map("/proc/self/uid_map");
  uint64_t inside = 0, outside = 0, length = 0;
  if (!(uid_map >> inside >> outside >> length)) return false;
  return !(inside == 0 && outside == 0 && length == 4294967295ULL);
}

bool cgroup_v2_mounted() {
  struct statfs st {};
  if (statfs("/sys/fs/cgroup", &st) != 0) return false;
  return st.f_type == CGROUP2_SUPER_MAGIC;
}

std::string this_hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

}  // namespace

bool annotation_pattern_matches(const std::string& pattern, const std::string& key) {
  return glob_match(pattern, key).value_or(false);
}

void set_container_resources(nlohmann::json& spec, const v1::LinuxContainerResources& requested,
                             bool disable_hugetlb_controller, bool swap_controller_available) {
  oci::Resources resources{
      .cpu_period = requested.cpu_period(),
      .cpu_quota = requested.cpu_quota(),
      .cpu_shares = requested.cpu_shares(),
      .cpuset_cpus = requested.cpuset_cpus(),
      .cpuset_mems = requested.cpuset_mems(),
      .memory_limit_in_bytes = requested.memory_limit_in_bytes(),
      .unified = {requested.unified().begin(), requested.unified().end()},
  };
  if (!disable_hugetlb_controller) {
    for (const v1::HugepageLimit& limit : requested.hugepage_limits()) {
      resources.hugepage_limits.push_back({limit.page_size(), limit.limit()});
    }
  }
  oci::set_resources(spec, resources, swap_controller_available);
  if (requested.memory_swap_limit_in_bytes() != 0) {
    spec["linux"]["resources"]["memory"]["swap"] = requested.memory_swap_limit_in_bytes();
  }
}

std::string cgroups_path(const std::string& cgroup_parent, const std::string& id, bool systemd) {
  if (cgroup_parent.empty()) {
    return systemd ? "system.slice:cri-containerd:" + id : "/" + std::string(oci::kCriNamespace) + "/" + id;
  }
  // The parent's form decides, not the driver: the kubelet sends slices to a
  // systemd runtime and paths to a cgroupfs one.
  std::string base = fs::path(clean_path(cgroup_parent)).filename().string();
  if (base.ends_with(".slice")) return base + ":cri-containerd:" + id;
  return clean_path(cgroup_parent + "/" + id);
}

errdefs::StatusOr<nlohmann::json> sandbox_spec(const SandboxSpecInput& in) {
  if (in.config == nullptr) return errdefs::InvalidArgument("sandbox spec needs the sandbox config");
  const v1::PodSandboxConfig& config = *in.config;
  const v1::LinuxSandboxSecurityContext& security = config.linux().security_context();
  const v1::NamespaceOption& namespaces = security.namespace_options();
  const bool host_network = namespaces.network() == v1::NODE;
  const bool host_ipc = namespaces.ipc() == v1::NODE;

  json spec = base_spec(in.id);
  // The sandbox's environment is the image's alone (no default PATH).
  spec["process"]["env"] = json::array();
  std::vector<std::string> args = in.pause_args;
  if (in.image != nullptr) {
    oci::set_env(spec, in.image->env);
    if (!in.image->working_dir.empty()) oci::set_cwd(spec, in.image->working_dir);
    args = in.image->entrypoint;
    args.insert(args.end(), in.image->cmd.begin(), in.image->cmd.end());
    if (args.empty())
      return errdefs::InvalidArgument("invalid empty entrypoint and cmd in the sandbox image config");
  }
  if (args.empty()) return errdefs::InvalidArgument("no command for the sandbox's pause process");
  oci::set_process_args(spec, args);
  oci::set_readonly_rootfs(spec, true);
  // Without its own UTS namespace the sandbox has the node's hostname, and
  // runc refuses a hostname it could not set.
  if (!config.hostname().empty() && !host_network) oci::set_hostname(spec, config.hostname());

  oci::set_cgroups_path(spec, cgroups_path(config.linux().cgroup_parent(), in.id, in.systemd_cgroup));

  if (host_network) {
    oci::remove_namespace(spec, "network");
    oci::remove_namespace(spec, "uts");
  } else {
    oci::set_namespace_path(spec, "network", in.netns_path);
  }
  if (namespaces.pid() == v1::NODE) oci::remove_namespace(spec, "pid");
  if (host_ipc) oci::remove_namespace(spec, "ipc");

  const std::string shm = host_ipc ? kDevShm : in.files.shm;
  if (!shm.empty()) {
    CTRD_RETURN_IF_ERROR(oci::add_mount(spec, {kDevShm, "bind", shm, {"rbind", "ro"}}));
  }
  // A VM-based runtime sets up the pod's DNS from the sandbox's resolv.conf.
  if (!in.files.resolv_conf.empty()) {
    CTRD_RETURN_IF_ERROR(oci::add_mount(spec, {kResolvConf, "bind", in.files.resolv_conf, {"rbind", "ro"}}));
  }

  merge_additional_gids(spec, to_gids(security.supplemental_groups()));

  std::map<std::string, std::string> sysctls;
  for (const auto& [name, value] : config.linux().sysctls()) {
    CTRD_RETURN_IF_ERROR(oci::validate_sysctl(name, host_network, host_ipc));
    sysctls[name] = value;
  }
  if (!host_network) {
    if (in.enable_unprivileged_ports && !sysctls.contains("net.ipv4.ip_unprivileged_port_start")) {
      sysctls["net.ipv4.ip_unprivileged_port_start"] = "0";
    }
    if (in.enable_unprivileged_icmp && !sysctls.contains("net.ipv4.ping_group_range") &&
        !running_in_user_namespace()) {
      sysctls["net.ipv4.ping_group_range"] = "0 2147483647";
    }
  }
  oci::set_sysctls(spec, sysctls);

  spec["linux"]["resources"]["cpu"]["shares"] = kSandboxDefaultCpuShares;

  std::map<std::string, std::string> annotations;
  if (config.linux().has_resources()) {
    const v1::LinuxContainerResources& resources = config.linux().resources();
    annotations[kSandboxCpuPeriod] = std::to_string(resources.cpu_period());
    annotations[kSandboxCpuQuota] = std::to_string(resources.cpu_quota());
    annotations[kSandboxCpuShares] = std::to_string(resources.cpu_shares());
    annotations[kSandboxMemory] = std::to_string(resources.memory_limit_in_bytes());
  }
  oci::set_oom_score_adj(spec, restricted_oom_score_adj(kSandboxOomScoreAdj, in.restrict_oom_score_adj,
                                                        in.daemon_oom_score_adj));

  oci::set_annotations(spec, passthrough_annotations(config.annotations(), in.pod_annotation_patterns));
  annotations[kContainerType] = "sandbox";
  annotations[kSandboxId] = in.id;
  annotations[kSandboxNamespace] = config.metadata().namespace_();
  annotations[kSandboxUid] = config.metadata().uid();
  annotations[kSandboxName] = config.metadata().name();
  annotations[kSandboxLogDir] = config.log_directory();
  oci::set_annotations(spec, annotations);

  CTRD_RETURN_IF_ERROR(apply_seccomp(spec, security.has_seccomp() ? &security.seccomp() : nullptr,
                                     security.seccomp_profile_path(), in.unset_seccomp_profile,
                                     security.privileged()));

  CTRD_ASSIGN_OR_RETURN(std::string user,
                        requested_user("", security.has_run_as_user() ? &security.run_as_user() : nullptr,
                                       security.has_run_as_group() ? &security.run_as_group() : nullptr));
  if (user.empty() && in.image != nullptr) user = in.image->user;
  // As in containerd, setting the user starts the additional gids over, so a
  // sandbox with a user keeps only its primary group.
  if (!user.empty()) CTRD_RETURN_IF_ERROR(apply_user(spec, user, in.read_rootfs_file));
  return spec;
}

errdefs::StatusOr<nlohmann::json> container_spec(const ContainerSpecInput& in) {
  if (in.config == nullptr || in.sandbox_config == nullptr || in.image == nullptr) {
    return errdefs::InvalidArgument("container spec needs the container, sandbox and image configs");
  }
  if (in.sandbox_pid == 0) return errdefs::InvalidArgument("container spec needs the sandbox's pid");
  const v1::ContainerConfig& config = *in.config;
  const v1::PodSandboxConfig& sandbox = *in.sandbox_config;
  const images::ImageConfig& image = *in.image;
  const v1::LinuxContainerSecurityContext& security = config.linux().security_context();
  const bool privileged = security.privileged();

  json spec = base_spec(in.id);

  // The CRI command replaces the image's entrypoint, its args the image's
  // cmd; args alone keep the entrypoint. An entrypoint of [""] means none.
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  if (command.empty()) {
    if (args.empty()) args = image.cmd;
    if (!(image.entrypoint.size() == 1 && image.entrypoint[0].empty())) command = image.entrypoint;
  }
  if (command.empty() && args.empty()) return errdefs::InvalidArgument("no command specified");
  command.insert(command.end(), args.begin(), args.end());
  oci::set_process_args(spec, command);
  // Unlike the sandbox, a container may gain privileges (setuid binaries)
  // unless its security context says no_new_privs.
  oci::set_no_new_privileges(spec, false);

  if (!config.working_dir().empty()) {
    oci::set_cwd(spec, config.working_dir());
  } else if (!image.working_dir.empty()) {
    oci::set_cwd(spec, image.working_dir);
  }
  if (config.tty()) {
    spec["process"]["terminal"] = true;
    spec["process"]["env"].push_back("TERM=xterm");
  }

  std::string hostname = sandbox.hostname();
  if (hostname.empty()) hostname = in.node_hostname.empty() ? this_hostname() : in.node_hostname;
  oci::set_env(spec, {"HOSTNAME=" + hostname});
  // The image's env first, so the request's overrides it.
  std::vector<std::string> env = image.env;
  for (const v1::KeyValue& kv : config.envs()) env.push_back(kv.key() + "=" + kv.value());
  oci::set_env(spec, env);

  // The sandbox's files, unless the request mounts its own there.
  std::vector<BindRequest> extra;
  const bool readonly_files = security.readonly_rootfs();
  if (!in.files.hostname.empty()) extra.push_back({kEtcHostname, in.files.hostname, readonly_files});
  if (!in.files.hosts.empty()) extra.push_back({kEtcHosts, in.files.hosts, readonly_files});
  if (!in.files.resolv_conf.empty()) extra.push_back({kResolvConf, in.files.resolv_conf, readonly_files});
  const bool host_ipc = security.namespace_options().ipc() == v1::NODE;
  const std::string shm = host_ipc || in.files.shm.empty() ? kDevShm : in.files.shm;
  extra.push_back({kDevShm, shm, false});
  for (const auto& [destination, host_dir] : in.image_volumes)
    extra.push_back({destination, host_dir, false});
  CTRD_RETURN_IF_ERROR(apply_mounts(spec, in, extra));

  if (!in.disable_proc_mount) {
    // containerd drops the default masked and read-only paths and uses the
    // request's: the kubelet sends the defaults unless the pod asks for an
    // unmasked /proc.
    oci::clear_masked_paths(spec);
    oci::clear_readonly_paths(spec);
    if (security.masked_paths_size() > 0) {
      spec["linux"]["maskedPaths"] =
          std::vector<std::string>(security.masked_paths().begin(), security.masked_paths().end());
    }
    if (security.readonly_paths_size() > 0) {
      spec["linux"]["readonlyPaths"] =
          std::vector<std::string>(security.readonly_paths().begin(), security.readonly_paths().end());
    }
  }

  CTRD_RETURN_IF_ERROR(apply_devices(spec, config));
  if (security.has_capabilities()) {
    const v1::Capability& caps = security.capabilities();
    oci::set_capabilities(spec, {caps.add_capabilities().begin(), caps.add_capabilities().end()},
                          {caps.drop_capabilities().begin(), caps.drop_capabilities().end()});
  }

  if (privileged) {
    if (!sandbox.linux().security_context().privileged()) {
      return errdefs::InvalidArgument("no privileged container allowed in sandbox");
    }
    const json device_rules_before = spec["linux"]["resources"].value("devices", json::array());
    oci::set_privileged(spec);
    if (in.privileged_without_host_devices) {
      // Privileged, but the devices cgroup keeps only what was granted.
      spec["linux"]["resources"]["devices"] = device_rules_before;
    } else {
      std::vector<json> host_devices;
      CTRD_RETURN_IF_ERROR(collect_devices("/dev", "", host_devices));
      for (json& device : host_devices) linux_devices(spec).push_back(std::move(device));
    }
  }

  if (security.no_new_privs()) oci::set_no_new_privileges(spec, true);
  if (security.readonly_rootfs()) oci::set_readonly_rootfs(spec, true);

  if (config.linux().has_resources()) {
    const v1::LinuxContainerResources& requested = config.linux().resources();
    set_container_resources(spec, requested, in.disable_hugetlb_controller, in.swap_controller_available);
    oci::set_oom_score_adj(
        spec, restricted_oom_score_adj(static_cast<int>(requested.oom_score_adj()), in.restrict_oom_score_adj,
                                       in.daemon_oom_score_adj));
  }
  oci::set_cgroups_path(spec, cgroups_path(sandbox.linux().cgroup_parent(), in.id, in.systemd_cgroup));

  oci::set_annotations(spec, passthrough_annotations(sandbox.annotations(), in.pod_annotation_patterns));
  oci::set_annotations(spec, passthrough_annotations(config.annotations(), in.container_annotation_patterns));

  // The pod's namespaces, joined through the sandbox's process. With host
  // network or IPC the sandbox is in the host's, so joining it is the same.
  oci::set_namespace_path(spec, "network", ns_path(in.sandbox_pid, "net"));
  oci::set_namespace_path(spec, "ipc", ns_path(in.sandbox_pid, "ipc"));
  oci::set_namespace_path(spec, "uts", ns_path(in.sandbox_pid, "uts"));
  const v1::NamespaceOption& namespaces = security.namespace_options();
  if (namespaces.pid() != v1::CONTAINER) {
    uint32_t pid_of_namespace = in.sandbox_pid;
    if (namespaces.pid() == v1::TARGET) {
      if (in.target_pid == 0) {
        return errdefs::InvalidArgument("pid namespace target " + errdefs::quoted(namespaces.target_id()) +
                                        " has no running process");
      }
      pid_of_namespace = in.target_pid;
    }
    oci::set_namespace_path(spec, "pid", ns_path(pid_of_namespace, "pid"));
  }
  merge_additional_gids(spec, to_gids(security.supplemental_groups()));

  oci::set_annotations(spec, {
                                 {kContainerType, "container"},
                                 {kSandboxId, in.sandbox_id},
                                 {kSandboxNamespace, sandbox.metadata().namespace_()},
                                 {kSandboxUid, sandbox.metadata().uid()},
                                 {kSandboxName, sandbox.metadata().name()},
                                 {kContainerName, config.metadata().name()},
                                 {kImageName, in.image_name},
                             });

  // On cgroup v2 a private cgroup namespace hides the host's hierarchy; a
  // privileged container keeps the host's view, as on cgroup v1.
  const bool v2 = in.cgroup_v2.has_value() ? *in.cgroup_v2 : cgroup_v2_mounted();
  if (v2 && !privileged) oci::set_namespace_path(spec, "cgroup", "");

  // The user, read from the image's rootfs (containerd applies these at
  // container creation, after the spec above).
  CTRD_ASSIGN_OR_RETURN(std::string user,
                        requested_user(security.run_as_username(),
                                       security.has_run_as_user() ? &security.run_as_user() : nullptr,
                                       security.has_run_as_group() ? &security.run_as_group() : nullptr));
  if (user.empty()) user = image.user;
  if (!user.empty()) CTRD_RETURN_IF_ERROR(apply_user(spec, user, in.read_rootfs_file));
  // The groups /etc/group lists the user in, named as the request or the image does.
  std::string group_member = "0";
  if (!security.run_as_username().empty()) {
    group_member = security.run_as_username();
  } else if (security.has_run_as_user()) {
    group_member = std::to_string(security.run_as_user().value());
  } else if (!image.user.empty()) {
    group_member = split(image.user, ':')[0];
  }
  CTRD_ASSIGN_OR_RETURN(std::vector<uint32_t> image_groups,
                        image_groups_of(group_member, in.read_rootfs_file));
  // The primary gid is always listed too, as containerd's ensureAdditionalGids does.
  image_groups.push_back(spec["process"]["user"]["gid"].get<uint32_t>());
  merge_additional_gids(spec, image_groups);
  merge_additional_gids(spec, to_gids(security.supplemental_groups()));

  CTRD_RETURN_IF_ERROR(check_apparmor(security));
  CTRD_RETURN_IF_ERROR(apply_seccomp(spec, security.has_seccomp() ? &security.seccomp() : nullptr,
                                     security.seccomp_profile_path(), in.unset_seccomp_profile, privileged));
  return spec;
}

}  // namespace ctrd::cri
