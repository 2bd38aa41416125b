#include "cmd/ctrd/publish.h"

#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <google/protobuf/any.pb.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <iterator>

namespace ctrd::cmd {

int publish_event(const std::string& address, const std::string& ns, const std::string& topic) {
  if (topic.empty()) {
    std::cerr << "ctrd publish: topic required to publish event: invalid argument\n";
    return 1;
  }
  if (ns.empty()) {
    std::cerr << "ctrd publish: namespace is required\n";
    return 1;
  }
  std::string payload((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  containerd::services::events::v1::PublishRequest req;
  req.set_topic(topic);
  if (!req.mutable_event()->ParseFromString(payload)) {
    std::cerr << "ctrd publish: the event on stdin is not a serialized google.protobuf.Any\n";
    return 1;
  }
  const std::string target = address.rfind("unix:", 0) == 0 ? address : "unix:" + address;
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = containerd::services::events::v1::Events::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", ns);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  google::protobuf::Empty resp;
  grpc::Status s = stub->Publish(&ctx, req, &resp);
  if (!s.ok()) {
    std::cerr << "ctrd publish: " << address << ": " << s.error_message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ctrd::cmd
