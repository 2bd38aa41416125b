// runtime/v2/shim: one shim process — how it is started (`<shim> ... start`
// in the bundle, as containerd 1.6's runtime/v2 binary.go), reached (ttRPC
// at the address it prints and writes to <bundle>/address) and cleaned up
// after it died (`<shim> ... delete`). Its log fifo (<bundle>/log) is kept
// open and copied to the daemon's stderr by a ShimLogs.
#pragma once

#include <google/protobuf/any.pb.h>
#include <google/protobuf/message_lite.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"
#include "runtime/runtime.h"
#include "runtime/v2/bundle.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::runtime::v2 {

// Copies every shim's log fifo to stderr from one thread, started with the
// first shim. Without a reader the shim would block once the pipe is full.
class ShimLogs {
 public:
  ShimLogs() = default;
  ~ShimLogs();
  ShimLogs(const ShimLogs&) = delete;
  ShimLogs& operator=(const ShimLogs&) = delete;

  // Creates (if needed) and opens <bundle>/log; the returned handle stops
  // copying it when destroyed.
  class Handle;
  errdefs::StatusOr<std::unique_ptr<Handle>> open(const Bundle& bundle);

 private:
  void loop();
  void forget(int fd);
  std::mutex mu_;
  os::UniqueFd epoll_;
  os::UniqueFd wake_;  // eventfd: stop
  std::thread thread_;
  std::unordered_map<int, os::UniqueFd> fifos_;
};

class ShimLogs::Handle {
 public:
  Handle(ShimLogs* owner, int fd) : owner_(owner), fd_(fd) {}
  ~Handle() { owner_->forget(fd_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

 private:
  ShimLogs* owner_;
  int fd_;
};

// What all of a runtime's shims share: the drain of their log fifos and the
// loop that reads their ttRPC replies (one thread each, however many shims).
struct ShimConnections {
  ShimLogs logs;
  ttrpc::ClientLoop loop;
};

struct ShimBinary {
  std::string path;  // absolute
  std::string grpc_address;
  std::string ttrpc_address;
  std::string publish_binary;
  bool debug = false;
  bool sched_core = false;
};

// A connected shim. Calls go to its containerd.task.v2.Task service.
class Shim {
 public:
  // Runs the binary's `start` action in the bundle with `options` on stdin,
  // records the binary in <bundle>/shim-binary-path and connects.
  static errdefs::StatusOr<std::shared_ptr<Shim>> start(const ShimBinary& binary, const Bundle& bundle,
                                                        const std::optional<runtime::Any>& options,
                                                        ShimConnections& connections,
                                                        std::function<void()> on_lost);
  // Connects to the shim named by <bundle>/address (after a daemon restart).
  static errdefs::StatusOr<std::shared_ptr<Shim>> connect(const Bundle& bundle, ShimConnections& connections,
                                                          std::function<void()> on_lost);
  // The binary's `delete` action: what a shim that died leaves (the
  // container, runc's state, the rootfs mounts) goes, and the container's
  // exit is reported. The bundle stays.
  static errdefs::StatusOr<runtime::Exit> cleanup(const ShimBinary& binary, const Bundle& bundle);

  ~Shim();
  Shim(const Shim&) = delete;
  Shim& operator=(const Shim&) = delete;

  template <typename Resp>
  errdefs::StatusOr<Resp> call(std::string_view method, const google::protobuf::MessageLite& request,
                               std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    return client_->call<Resp>(kService, method, request, metadata_, timeout);
  }
  template <typename Resp>
  void call_async(std::string_view method, const google::protobuf::MessageLite& request,
                  std::function<void(errdefs::StatusOr<Resp>)> done) {
    client_->call_async(
        kService, method, request.SerializeAsString(), metadata_,
        [done = std::move(done), method = std::string(method)](errdefs::StatusOr<std::string> reply) {
          if (!reply.ok()) return done(reply.status());
          Resp response;
          if (!response.ParseFromString(*reply))
            return done(errdefs::Internal("ttrpc: cannot decode the reply to " + method));
          done(std::move(response));
        });
  }

  // Closes the connection without reporting the shim lost.
  void close();
  const std::string& address() const { return client_->address(); }

  static constexpr std::string_view kService = "containerd.task.v2.Task";

 private:
  Shim(std::unique_ptr<ShimLogs::Handle> log, const std::string& ns);
  errdefs::Status dial(const std::string& address, ttrpc::ClientLoop& loop, std::function<void()> on_lost);

  std::unique_ptr<ShimLogs::Handle> log_;
  ttrpc::Metadata metadata_;
  std::unique_ptr<ttrpc::Client> client_;
  std::shared_ptr<std::atomic<bool>> closing_ = std::make_shared<std::atomic<bool>>(false);
};

// containerd's errors come back over ttRPC as gRPC codes with messages;
// "ttrpc: closed"-like failures (the shim went away) are Unavailable.
bool shim_gone(const errdefs::Status& status);

}  // namespace ctrd::runtime::v2
