#include "cni/cni.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "os/process.h"

namespace ctrd::cni {
namespace {

using nlohmann::json;

enum class Command { kAdd, kDel };

std::string_view command_name(Command command) { return command == Command::kAdd ? "ADD" : "DEL"; }

errdefs::StatusOr<json> parse_list(const std::string& conflist) {
  json list = json::parse(conflist, nullptr, /*allow_exceptions=*/false);
  if (list.is_discarded() || !list.is_object())
    return errdefs::InvalidArgument("cni: config list is not JSON");
  if (!list.contains("plugins") || !list["plugins"].is_array() || list["plugins"].empty())
    return errdefs::InvalidArgument("cni: config list has no plugins");
  for (const auto& plugin : list["plugins"]) {
    if (!plugin.is_object() || !plugin.contains("type") || !plugin["type"].is_string())
      return errdefs::InvalidArgument("cni: a plugin without a type");
  }
  return list;
}

errdefs::StatusOr<std::string> find_plugin(const std::string& type, const Options& options) {
  if (type.find('/') != std::string::npos)
    return errdefs::InvalidArgument("cni: invalid plugin type " + type);
  for (const auto& dir : options.bin_dirs) {
    const std::string path = dir + "/" + type;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return errdefs::NotFound("cni: plugin " + type + " not found in the plugin directories");
}

// The configuration one plugin sees on stdin.
json plugin_config(const json& list, const json& plugin, const Attachment& attachment, const json* previous) {
  json conf = plugin;
  conf["name"] = list.value("name", "");
  conf["cniVersion"] = list.value("cniVersion", "0.4.0");
  if (previous != nullptr) conf["prevResult"] = *previous;
  if (plugin.contains("capabilities") && plugin["capabilities"].is_object()) {
    json runtime_config = json::object();
    for (const auto& [capability, enabled] : plugin["capabilities"].items()) {
      if (!enabled.is_boolean() || !enabled.get<bool>()) continue;
      auto arg = attachment.capability_args.find(capability);
      if (arg == attachment.capability_args.end()) continue;
      json value = json::parse(arg->second, nullptr, false);
      if (!value.is_discarded()) runtime_config[capability] = std::move(value);
    }
    if (!runtime_config.empty()) conf["runtimeConfig"] = std::move(runtime_config);
  }
  return conf;
}

errdefs::StatusOr<std::string> exec_plugin(Command command, const json& conf, const Attachment& attachment,
                                           const Options& options) {
  const std::string type = conf["type"].get<std::string>();
  CTRD_ASSIGN_OR_RETURN(std::string binary, find_plugin(type, options));
  std::string args;
  for (const auto& [key, value] : attachment.args) {
    if (!args.empty()) args += ';';
    args += key + "=" + value;
  }
  std::string path;
  for (const auto& dir : options.bin_dirs) path += (path.empty() ? "" : ":") + dir;
  os::RunOptions run;
  run.env = {"CNI_COMMAND=" + std::string(command_name(command)),
             "CNI_CONTAINERID=" + attachment.container_id,
             "CNI_NETNS=" + attachment.netns,
             "CNI_IFNAME=" + attachment.ifname,
             "CNI_ARGS=" + args,
             "CNI_PATH=" + path,
             "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  run.stdin_data = conf.dump();
  run.timeout = options.timeout;
  CTRD_ASSIGN_OR_RETURN(os::RunResult result, os::run({binary}, run));
  if (result.ok()) return result.out;
  // Plugins report errors as JSON on stdout: {"code", "msg", "details"}.
  json error = json::parse(result.out, nullptr, false);
  std::string what = "cni: plugin " + type + " failed (" + std::string(command_name(command));
  if (error.is_object() && error.contains("msg")) {
    what += ", code " + std::to_string(error.value("code", 0)) + "): " + error.value("msg", "");
    if (const std::string details = error.value("details", ""); !details.empty()) what += "; " + details;
  } else {
    what += result.signal != 0 ? ", killed by signal " + std::to_string(result.signal) + ")"
                               : ", exit status " + std::to_string(result.exit_code) + ")";
    if (!result.err.empty()) what += ": " + result.err;
  }
  return errdefs::Unknown(what);
}

Result parse_result(const std::string& text) {
  Result result{.json = text, .ips = {}, .interfaces = {}};
  json doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) return result;
  if (doc.contains("interfaces") && doc["interfaces"].is_array()) {
    for (const auto& i : doc["interfaces"])
      result.interfaces.push_back(i.is_object() ? i.value("name", "") : "");
  }
  if (doc.contains("ips") && doc["ips"].is_array()) {
    for (const auto& ip : doc["ips"]) {
      if (!ip.is_object()) continue;
      result.ips.push_back(
          IpConfig{.address = ip.value("address", ""),
                   .gateway = ip.value("gateway", ""),
                   .interface = ip.contains("interface") && ip["interface"].is_number_integer()
                                    ? ip["interface"].get<int>()
                                    : -1});
    }
  }
  return result;
}

}  // namespace

std::vector<std::string> Result::addresses_of(const std::string& ifname) const {
  std::vector<std::string> out;
  for (const auto& ip : ips) {
    const bool named = ip.interface >= 0 && static_cast<size_t>(ip.interface) < interfaces.size();
    if (named && interfaces[static_cast<size_t>(ip.interface)] != ifname) continue;
    out.push_back(ip.address.substr(0, ip.address.find('/')));
  }
  return out;
}

errdefs::StatusOr<Result> add(const std::string& conflist, const Attachment& attachment,
                              const Options& options) {
  CTRD_ASSIGN_OR_RETURN(json list, parse_list(conflist));
  json previous;
  bool have_previous = false;
  std::string last;
  for (const auto& plugin : list["plugins"]) {
    const json conf = plugin_config(list, plugin, attachment, have_previous ? &previous : nullptr);
    CTRD_ASSIGN_OR_RETURN(last, exec_plugin(Command::kAdd, conf, attachment, options));
    json parsed = json::parse(last, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) {
      previous = std::move(parsed);
      have_previous = true;
    }
  }
  return parse_result(have_previous ? previous.dump() : last);
}

errdefs::Status del(const std::string& conflist, const Attachment& attachment, const std::string& previous,
                    const Options& options) {
  CTRD_ASSIGN_OR_RETURN(json list, parse_list(conflist));
  json prev = previous.empty() ? json() : json::parse(previous, nullptr, false);
  const bool have_previous = prev.is_object();
  const auto& plugins = list["plugins"];
  // Every plugin is asked, even after one fails: what the others hold must
  // go too. The first failure is reported.
  errdefs::Status first_failure;
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    const json conf = plugin_config(list, *it, attachment, have_previous ? &prev : nullptr);
    auto done = exec_plugin(Command::kDel, conf, attachment, options);
    if (!done.ok() && first_failure.ok()) first_failure = done.status();
  }
  return first_failure;
}

}  // namespace ctrd::cni
