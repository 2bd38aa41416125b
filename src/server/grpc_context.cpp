#include "server/grpc_context.h"

#include "identifiers/identifiers.h"

namespace ctrd::server {
namespace {

std::optional<std::string> header(const grpc::ServerContextBase& ctx, std::string_view key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

errdefs::StatusOr<std::string> namespace_of(const grpc::ServerContextBase& ctx) {
  auto ns = header(ctx, kNamespaceHeader);
  if (!ns || ns->empty()) return errdefs::FailedPrecondition("namespace is required");
  if (auto s = identifiers::validate(*ns); !s.ok()) return s.with_context("namespace");
  return *ns;
}

std::string lease_of(const grpc::ServerContextBase& ctx) { return header(ctx, kLeaseHeader).value_or(""); }

}  // namespace ctrd::server
