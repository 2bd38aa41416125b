// proxy/channel: the connection to an external plugin (containerd's
// `proxy_plugins`) — a gRPC channel to its unix socket, call contexts that
// fail fast instead of waiting for the plugin, and the mapping of call
// statuses back to errdefs with the plugin named when it cannot be reached.
//
// The channel reconnects by itself: a plugin that goes away makes calls fail
// with Unavailable (the rest of the daemon is unaffected) and calls work again
// once it is back, without a daemon restart.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/sync_stream.h>

#include <memory>
#include <string>
#include <string_view>

#include "errdefs/errdefs.h"

namespace ctrd::proxy {

class Connection {
 public:
  // `name` identifies the plugin in messages; `address` is a socket path,
  // with or without a "unix://" prefix. Nothing is dialed until the first call.
  Connection(std::string name, const std::string& address);

  const std::string& name() const { return name_; }
  const std::string& address() const { return address_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // A context for one call, carrying the namespace and lease headers when given.
  std::unique_ptr<grpc::ClientContext> context(std::string_view ns = {}, std::string_view lease = {}) const;

  // The call's outcome as a Status. Unavailable names the plugin and its
  // address, and lets the next call try to connect at once rather than after
  // the channel's reconnect backoff.
  errdefs::Status status(const grpc::Status& s) const;

  // Reads a List stream to its end, calling `each` on every entry of every
  // batch (`info`); an error from `each` ends the stream early and is returned.
  template <typename Response, typename Each>
  errdefs::Status read_list(grpc::ClientContext& ctx, grpc::ClientReaderInterface<Response>& reader,
                            Each each) const {
    Response resp;
    while (reader.Read(&resp)) {
      for (const auto& entry : resp.info()) {
        if (errdefs::Status s = each(entry); !s.ok()) {
          ctx.TryCancel();  // the rest is not wanted
          (void)reader.Finish();
          return s;
        }
      }
    }
    return status(reader.Finish());
  }

 private:
  std::string name_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace ctrd::proxy
