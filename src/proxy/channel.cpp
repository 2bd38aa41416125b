#include "proxy/channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "errdefs/grpc_status.h"

namespace ctrd::proxy {
namespace {

constexpr std::string_view kUnixScheme = "unix://";
// Larger than gRPC's 4 MiB default, as containerd's (and ctrd's) own server.
constexpr int kMaxMessageSize = 16 << 20;

std::string socket_path(std::string_view address) {
  if (address.starts_with(kUnixScheme)) address.remove_prefix(kUnixScheme.size());
  return std::string(address);
}

std::shared_ptr<grpc::Channel> dial(const std::string& path) {
  grpc::ChannelArguments args;
  // containerd caps the backoff at 3 s; gRPC's own cap of 2 minutes would
  // leave a restarted plugin unused for that long.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 3000);
  // Also the bound on one connection attempt (gRPC's default is 20 s): a
  // socket that accepts but never answers must not stall calls for long.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  args.SetMaxReceiveMessageSize(kMaxMessageSize);
  args.SetMaxSendMessageSize(kMaxMessageSize);
  return grpc::CreateCustomChannel("unix://" + path, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

Connection::Connection(std::string name, const std::string& address)
    : name_(std::move(name)), address_(socket_path(address)), channel_(dial(address_)) {}

std::unique_ptr<grpc::ClientContext> Connection::context(std::string_view ns, std::string_view lease) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  // Queueing calls until the plugin comes back would hang every caller.
  ctx->set_wait_for_ready(false);
  if (!ns.empty()) ctx->AddMetadata("containerd-namespace", std::string(ns));
  if (!lease.empty()) ctx->AddMetadata("containerd-lease", std::string(lease));
  return ctx;
}

errdefs::Status Connection::status(const grpc::Status& s) const {
  if (s.ok()) return errdefs::Status::Ok();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
    return errdefs::Unavailable("proxy plugin " + name_ + " at " + address_ + ": " + s.error_message());
  }
  return errdefs::from_grpc(s);
}

}  // namespace ctrd::proxy
