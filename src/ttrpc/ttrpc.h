// ttrpc: containerd's ttRPC (protobuf over a unix socket, without HTTP/2),
// compatible with github.com/containerd/ttrpc 1.1 as used by
// containerd-shim-runc-v2. The Client talks to shims (many threads share one
// connection, calls multiplexed by stream id; the replies of every client on
// a ClientLoop are read by that loop's one thread); the Server answers shims
// (e.g. events Forward) from one epoll thread for all connections, with
// handlers run on a bounded worker pool. Unary calls only: ttRPC 1.1 has no
// streams.
#pragma once

#include <google/protobuf/message_lite.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"
#include "ttrpc/wire.h"

namespace ctrd::ttrpc {

// The metadata key carrying the containerd namespace (namespaces/ttrpc.go).
inline constexpr std::string_view kNamespaceKey = "containerd-namespace-ttrpc";

// The first value of `key` (keys compare case-insensitively, as Go's MD.Get).
std::optional<std::string_view> metadata_value(const Metadata& metadata, std::string_view key);

using Clock = std::chrono::steady_clock;

struct CallContext {
  std::string service;
  std::string method;
  Metadata metadata;
  // From the request's timeout_nano; the handler should give up by then.
  std::optional<Clock::time_point> deadline;
  // Stops when the caller's connection closes or the server shuts down, so
  // a blocked handler can return (std::condition_variable_any::wait_until
  // takes both this and the deadline).
  std::stop_token stop;
};

// Handlers run concurrently on the worker pool; the returned bytes are the
// response message, the error's code and message go to the caller.
using Handler =
    std::function<errdefs::StatusOr<std::string>(const CallContext& ctx, std::string_view request)>;

struct ServerOptions {
  // Like containerd's ttRPC listener: only peers with our uid and gid.
  bool require_same_user = true;
  // Handler threads are started as calls need them, up to this many; further
  // calls wait for one to be free.
  size_t max_workers = 32;
  // Requests in flight on one connection beyond this get ResourceExhausted.
  size_t max_requests_per_connection = 1024;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  ~Server();  // shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Before serving. AlreadyExists for a second handler of the same method.
  errdefs::Status add_handler(std::string_view service, std::string_view method, Handler handler);

  // Accepts from `listener` (a listening stream socket) on the I/O thread,
  // which starts with the first serve; returns at once.
  errdefs::Status serve(os::UniqueFd listener);
  // Serves one connected socket (a socketpair end, a socket from a shim).
  errdefs::Status serve_connection(os::UniqueFd conn);

  // Closes listeners and connections (callers see their calls fail), stops
  // handlers' stop tokens and waits for running handlers to return; so it
  // must not be called from a handler.
  void shutdown();

  size_t connection_count() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// One epoll thread that reads the replies of many Clients, so a daemon with
// a thousand shims has one reader, not a thousand. What runs there (replies
// handed to waiting callers, call_async callbacks, on_close) must be quick
// and must never make a synchronous call: its reply could only be read by
// the very thread that waits for it.
class ClientLoop {
 public:
  ClientLoop();
  // Closes the clients still on the loop (their pending calls fail with
  // Unavailable, their on_close runs here) and joins the thread.
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  size_t connection_count() const;

  class Impl;

 private:
  friend class Client;
  std::shared_ptr<Impl> impl_;
};

struct ClientOptions {
  // Called once, on the loop's thread, when the connection is gone (closed
  // by either side). It must not destroy the Client.
  std::function<void()> on_close;
  // Where replies are read; it must outlive the Client. Without one the
  // Client runs a loop (a thread) of its own.
  ClientLoop* loop = nullptr;
};

class Client {
 public:
  // `address` is a unix socket path, with or without "unix://".
  static errdefs::StatusOr<std::unique_ptr<Client>> connect(std::string_view address,
                                                            ClientOptions options = {});
  // Takes a connected socket; `address` names it in errors.
  static errdefs::StatusOr<std::unique_ptr<Client>> from_fd(os::UniqueFd conn, std::string address,
                                                            ClientOptions options = {});
  ~Client();  // close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Safe from any number of threads at once. Unavailable (naming the
  // address) once the connection is gone; DeadlineExceeded after `timeout`,
  // which is also sent to the server as the request's timeout_nano.
  errdefs::StatusOr<std::string> call(std::string_view service, std::string_view method,
                                      std::string_view request, const Metadata& metadata = {},
                                      std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

  template <typename Resp>
  errdefs::StatusOr<Resp> call(std::string_view service, std::string_view method,
                               const google::protobuf::MessageLite& request, const Metadata& metadata = {},
                               std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    std::string bytes;
    if (!request.SerializeToString(&bytes))
      return errdefs::Internal("ttrpc: cannot encode " + request.GetTypeName() + " for " +
                               std::string(method));
    CTRD_ASSIGN_OR_RETURN(std::string reply, call(service, method, bytes, metadata, timeout));
    Resp response;
    if (!response.ParseFromString(reply))
      return errdefs::Internal("ttrpc: cannot decode " + response.GetTypeName() + " from " +
                               std::string(method));
    return response;
  }

  // Sends the call and returns; `done` runs once with the reply or the error,
  // on the loop's thread (or on this one if sending fails), so it must be
  // quick. No timeout: for calls that wait for an event (a
  // shim's Wait), where holding a thread per caller would not scale.
  using Callback = std::function<void(errdefs::StatusOr<std::string>)>;
  void call_async(std::string_view service, std::string_view method, std::string_view request,
                  const Metadata& metadata, Callback done);

  // Fails pending calls with Unavailable and, unless called on the loop's
  // thread, waits until on_close has run: after it no callback runs.
  void close();
  bool closed() const;
  const std::string& address() const;

  class Impl;

 private:
  Client(std::unique_ptr<ClientLoop> own_loop, std::shared_ptr<Impl> impl);
  std::unique_ptr<ClientLoop> own_loop_;  // when the options named none
  std::shared_ptr<Impl> impl_;            // shared with the loop while it is registered
};

// A listening unix socket at `address` ("unix://" accepted), replacing a
// stale socket file left by a previous run.
errdefs::StatusOr<os::UniqueFd> listen_unix(std::string_view address);

}  // namespace ctrd::ttrpc
