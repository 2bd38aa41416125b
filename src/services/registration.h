// services/registration.h: the two registrations every API in ctrd is made of —
// a service plugin (io.containerd.service.v1.<x>-service) holding the semantics,
// and its gRPC front end (io.containerd.grpc.v1.<x>) — written once.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <vector>

#include "plugin/plugin.h"
#include "server/service.h"

namespace ctrd::services {

// Registers io.containerd.service.v1.<service_id>, built by `make` from the
// first initialized plugin of each of `requirements` (one per Dependency, in order).
template <typename Service, typename... Dependencies>
void register_service(
    plugin::Registry& registry, const std::string& service_id,
    std::array<std::string_view, sizeof...(Dependencies)> requirements,
    std::type_identity_t<
        std::function<std::shared_ptr<Service>(plugin::InitContext&, std::shared_ptr<Dependencies>...)>>
        make) {
  std::vector<std::string> types(requirements.begin(), requirements.end());
  registry.register_plugin({
      .type = std::string(plugin::type::kService),
      .id = service_id,
      .requirements = types,
      .init = [types,
               make = std::move(make)](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        std::tuple<std::shared_ptr<Dependencies>...> dependencies;
        errdefs::Status missing;
        [&]<size_t... I>(std::index_sequence<I...>) {
          (
              [&] {
                if (!missing.ok()) return;
                auto found = ic.get<Dependencies>(types[I]);
                if (found.ok()) {
                  std::get<I>(dependencies) = std::move(found).value();
                } else {
                  missing = found.status();
                }
              }(),
              ...);
        }
        (std::index_sequence_for<Dependencies...>());
        if (!missing.ok()) return missing;
        return plugin::Instance::of(
            std::apply([&](auto&&... deps) { return make(ic, std::forward<decltype(deps)>(deps)...); },
                       std::move(dependencies)));
      },
  });
}

// The single-dependency form.
template <typename Service, typename Dependency>
void register_service(
    plugin::Registry& registry, const std::string& service_id, std::string_view requirement,
    std::function<std::shared_ptr<Service>(plugin::InitContext&, std::shared_ptr<Dependency>)> make) {
  register_service<Service, Dependency>(registry, service_id, std::array<std::string_view, 1>{requirement},
                                        std::move(make));
}

// Registers io.containerd.grpc.v1.<id>: a FrontEnd (a server::GrpcService)
// constructed from the service plugin <service_id>.
template <typename FrontEnd, typename Service>
void register_grpc_front_end(plugin::Registry& registry, const std::string& id,
                             const std::string& service_id) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGRPC),
      .id = id,
      .requirements = {std::string(plugin::type::kService)},
      .init = [service_id](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(auto service, ic.get_by_id<Service>(plugin::type::kService, service_id));
        // Front ends with blocking calls take the server's pool for them.
        if constexpr (std::is_constructible_v<FrontEnd, std::shared_ptr<Service>,
                                              std::shared_ptr<executor::WorkerPool>>) {
          if (!ic.blocking()) return errdefs::FailedPrecondition("no pool for blocking calls");
          return plugin::Instance::of<FrontEnd, server::GrpcService>(
              std::make_shared<FrontEnd>(std::move(service), ic.blocking()));
        } else {
          return plugin::Instance::of<FrontEnd, server::GrpcService>(
              std::make_shared<FrontEnd>(std::move(service)));
        }
      },
  });
}

}  // namespace ctrd::services
