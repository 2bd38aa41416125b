// config::Binder — typed configuration structs, decoded from and encoded to TOML.
//
// A config struct lists its fields once, in a `bind` member:
//
//   struct Config {
//     std::string root_path = "/var/lib/x";
//     config::Duration timeout{std::chrono::seconds(5)};
//     void bind(config::Binder& b) {
//       b.field("root_path", root_path);
//       b.field("timeout", timeout);
//     }
//   };
//
// and the same list serves to decode a TOML table (type errors name the key's
// full path; unknown keys are collected as warnings) and to print defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "errdefs/errdefs.h"

namespace ctrd::config {

// A Go-style duration ("1h2m3.5s", "250ms", "0s").
struct Duration {
  std::chrono::nanoseconds value{0};
  bool operator==(const Duration&) const = default;
};

errdefs::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::nanoseconds d);

class Binder {
 public:
  virtual ~Binder() = default;
  virtual void field(std::string_view key, bool& value) = 0;
  virtual void field(std::string_view key, int64_t& value) = 0;
  virtual void field(std::string_view key, int32_t& value) = 0;
  virtual void field(std::string_view key, uint32_t& value) = 0;
  virtual void field(std::string_view key, double& value) = 0;
  virtual void field(std::string_view key, std::string& value) = 0;
  virtual void field(std::string_view key, Duration& value) = 0;
  virtual void field(std::string_view key, std::vector<std::string>& value) = 0;
  virtual void field(std::string_view key, std::map<std::string, std::string>& value) = 0;
  // A nested table; `bind_fields` binds its fields.
  virtual void section(std::string_view key, const std::function<void(Binder&)>& bind_fields) = 0;

  // A table of tables keyed by name, e.g. [x.runtimes.<name>]. Decoding binds
  // every name the table holds (each entry starts from the value already held
  // under that name, else a default one); encoding binds every name `held` lists.
  virtual void section_map(std::string_view key, const std::function<std::vector<std::string>()>& held,
                           const std::function<void(const std::string& name, Binder&)>& bind_entry) = 0;

  template <typename T>
  void section(std::string_view key, T& value) {
    section(key, [&value](Binder& b) { value.bind(b); });
  }
  template <typename T>
  void section_map(std::string_view key, std::map<std::string, T>& value) {
    section_map(
        key,
        [&value] {
          std::vector<std::string> names;
          names.reserve(value.size());
          for (const auto& [name, entry] : value) names.push_back(name);
          return names;
        },
        [&value](const std::string& name, Binder& b) { value[name].bind(b); });
  }
};

// What decoding found besides the values: the first hard error, and unknown keys.
struct DecodeReport {
  errdefs::Status error;
  std::vector<std::string> unknown_keys;  // full dotted paths
};

// Decodes `table` into the fields bound by `bind_fields`. `path` prefixes key
// names in messages (e.g. `plugins."io.containerd.content.v1.content"`).
DecodeReport decode(const toml::table& table, std::string_view path,
                    const std::function<void(Binder&)>& bind_fields);

// Encodes the fields bound by `bind_fields` into a TOML table.
std::unique_ptr<toml::table> encode(const std::function<void(Binder&)>& bind_fields);

// Convenience for structs with a `bind` member.
template <typename T>
DecodeReport decode_into(const toml::table& table, std::string_view path, T& value) {
  return decode(table, path, [&value](Binder& b) { value.bind(b); });
}
template <typename T>
std::unique_ptr<toml::table> encode_from(T& value) {
  return encode([&value](Binder& b) { value.bind(b); });
}

// Quotes a key for a dotted path when it is not a bare TOML key.
std::string path_key(std::string_view key);

}  // namespace ctrd::config
