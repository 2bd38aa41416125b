#include "proxy/plugin.h"

#include <functional>
#include <vector>

#include "proxy/content.h"
#include "proxy/diff.h"
#include "proxy/snapshotter.h"

namespace ctrd::proxy {
namespace {

using MakeInstance = std::function<plugin::Instance(std::shared_ptr<Connection>, const std::string& name)>;

struct Kind {
  std::string_view type;
  MakeInstance make;
};

// What a `type` value names: containerd's short form or the full plugin type.
errdefs::StatusOr<Kind> kind_of(const std::string& name, const std::string& type) {
  if (type == "snapshot" || type == plugin::type::kSnapshot) {
    return Kind{plugin::type::kSnapshot, [](std::shared_ptr<Connection> c, const std::string& n) {
                  return plugin::Instance::of<snapshots::Snapshotter>(new_snapshotter(std::move(c), n));
                }};
  }
  if (type == "content" || type == plugin::type::kContent) {
    return Kind{plugin::type::kContent, [](std::shared_ptr<Connection> c, const std::string&) {
                  return plugin::Instance::of<content::Store>(new_content_store(std::move(c)));
                }};
  }
  if (type == "diff" || type == plugin::type::kDiff) {
    return Kind{
        plugin::type::kDiff, [](std::shared_ptr<Connection> c, const std::string&) {
          return plugin::Instance::of<diff::Differ, diff::Applier, diff::Comparer>(new_differ(std::move(c)));
        }};
  }
  return errdefs::InvalidArgument("proxy_plugins." + config::path_key(name) +
                                  ": unsupported proxy plugin type \"" + type +
                                  "\" (want snapshot, content or diff)");
}

}  // namespace

errdefs::Status register_proxy_plugins(plugin::Registry& registry, const config::ServerConfig& config) {
  std::vector<plugin::Registration> registrations;
  for (const auto& [name, entry] : config.proxy_plugins) {
    CTRD_ASSIGN_OR_RETURN(Kind kind, kind_of(name, entry.type));
    if (entry.address.empty()) {
      return errdefs::InvalidArgument("proxy_plugins." + config::path_key(name) + ": address is required");
    }
    registrations.push_back({
        .type = std::string(kind.type),
        .id = name,
        // A named copy: clang 14 (which clang-tidy uses) cannot capture a structured binding.
        .init = [name = std::string(name), address = entry.address, make = std::move(kind.make)](
                    plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
          ic.meta().exports["address"] = address;
          ic.meta().platforms.push_back(plugin::host_platform());
          return make(std::make_shared<Connection>(name, address), name);
        },
    });
  }
  for (auto& r : registrations) CTRD_RETURN_IF_ERROR(registry.add(std::move(r)));
  return errdefs::Status::Ok();
}

}  // namespace ctrd::proxy
