#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <unistd.h>

#include <chrono>

#include "os/unix_socket.h"
#include "proxy/server.h"

namespace ctrd::proxy {
namespace {

constexpr int kMaxMessageSize = 16 << 20;
// How long calls in flight get at shutdown before they are cancelled.
constexpr std::chrono::seconds kShutdownGrace{5};

}  // namespace

errdefs::StatusOr<std::unique_ptr<SocketServer>> SocketServer::start(
    const std::string& address, std::vector<std::unique_ptr<grpc::Service>> services) {
  std::string path = address;
  if (path.rfind("unix://", 0) == 0) path.erase(0, 7);
  if (path.empty()) return errdefs::InvalidArgument("address is required");
  CTRD_RETURN_IF_ERROR(os::prepare_unix_socket(path));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + path, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(kMaxMessageSize);
  builder.SetMaxSendMessageSize(kMaxMessageSize);
  for (auto& s : services) builder.RegisterService(s.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return errdefs::Unavailable("cannot serve on " + path);
  CTRD_RETURN_IF_ERROR(os::secure_unix_socket(path, ::getuid(), ::getgid()));
  return std::unique_ptr<SocketServer>(
      new SocketServer(std::move(path), std::move(services), std::move(server)));
}

SocketServer::SocketServer(std::string path, std::vector<std::unique_ptr<grpc::Service>> services,
                           std::unique_ptr<grpc::Server> server)
    : path_(std::move(path)), services_(std::move(services)), server_(std::move(server)) {}

SocketServer::~SocketServer() { shutdown(); }

void SocketServer::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server_->Wait();
  ::unlink(path_.c_str());
}

}  // namespace ctrd::proxy
