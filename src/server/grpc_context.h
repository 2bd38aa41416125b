// server/grpc_context.h: what a gRPC call carries besides its request —
// the namespace (metadata `containerd-namespace`) and the lease
// (`containerd-lease`), read as containerd's server reads them.
#pragma once

#include <grpcpp/server_context.h>

#include <optional>
#include <string>

#include "errdefs/errdefs.h"

namespace ctrd::server {

inline constexpr std::string_view kNamespaceHeader = "containerd-namespace";
inline constexpr std::string_view kLeaseHeader = "containerd-lease";

// The call's namespace; FailedPrecondition "namespace is required" when absent,
// InvalidArgument when it is not a valid identifier.
errdefs::StatusOr<std::string> namespace_of(const grpc::ServerContextBase& ctx);
// The call's lease id, or empty.
std::string lease_of(const grpc::ServerContextBase& ctx);

}  // namespace ctrd::server
