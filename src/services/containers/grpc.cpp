#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>
#include <grpcpp/server_builder.h>

#include "protobuf/time.h"
#include "server/arena.h"
#include "server/grpc_context.h"
#include "server/service.h"
#include "server/stream.h"
#include "server/unary.h"
#include "services/containers/containers.h"
#include "services/registration.h"

namespace ctrd::services::containers {
namespace {

using protobuf::to_timestamp;

namespace api = containerd::services::containers::v1;

void to_proto(metadata::AnyValue&& v, google::protobuf::Any* out) {
  out->set_type_url(std::move(v.type_url));
  out->set_value(std::move(v.value));
}

metadata::AnyValue from_proto(const google::protobuf::Any& a) { return {a.type_url(), a.value()}; }

// Takes the container apart: List sends hundreds of them, and moving the
// strings (a spec is kilobytes) spares a copy of each.
void to_proto(metadata::Container&& c, api::Container* out) {
  out->set_id(std::move(c.id));
  auto& labels = *out->mutable_labels();
  for (auto& [key, value] : c.labels) labels[key] = std::move(value);
  out->set_image(std::move(c.image));
  out->mutable_runtime()->set_name(std::move(c.runtime.name));
  if (!c.runtime.options.type_url.empty()) {
    to_proto(std::move(c.runtime.options), out->mutable_runtime()->mutable_options());
  }
  if (!c.spec.type_url.empty()) to_proto(std::move(c.spec), out->mutable_spec());
  out->set_snapshotter(std::move(c.snapshotter));
  out->set_snapshot_key(std::move(c.snapshot_key));
  *out->mutable_created_at() = to_timestamp(c.created_at);
  *out->mutable_updated_at() = to_timestamp(c.updated_at);
  for (auto& [key, value] : c.extensions) to_proto(std::move(value), &(*out->mutable_extensions())[key]);
}

metadata::Container from_proto(const api::Container& in) {
  metadata::Container c;
  c.id = in.id();
  c.labels = {in.labels().begin(), in.labels().end()};
  c.image = in.image();
  c.runtime.name = in.runtime().name();
  if (in.runtime().has_options()) c.runtime.options = from_proto(in.runtime().options());
  if (in.has_spec()) c.spec = from_proto(in.spec());
  c.snapshotter = in.snapshotter();
  c.snapshot_key = in.snapshot_key();
  for (const auto& [key, value] : in.extensions()) c.extensions[key] = from_proto(value);
  return c;
}

class GrpcFrontEnd final : public server::GrpcServiceOf<api::Containers::CallbackService> {
 public:
  explicit GrpcFrontEnd(std::shared_ptr<ContainersService> s) : service_(std::move(s)) {
    SetMessageAllocatorFor_List(&list_allocator_);
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const api::GetContainerRequest* req,
                                api::GetContainerResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto c, service_->get(ns, req->id()));
      to_proto(std::move(c), resp->mutable_container());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const api::ListContainersRequest* req,
                                 api::ListContainersResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto all, service_->list(ns, {req->filters().begin(), req->filters().end()}));
      resp->mutable_containers()->Reserve(static_cast<int>(all.size()));
      for (auto& c : all) to_proto(std::move(c), resp->add_containers());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerWriteReactor<api::ListContainerMessage>* ListStream(
      grpc::CallbackServerContext* ctx, const api::ListContainersRequest* req) override {
    auto ns = server::namespace_of(*ctx);
    if (!ns.ok()) return server::failed_stream<api::ListContainerMessage>(ns.status());
    auto all = service_->list(*ns, {req->filters().begin(), req->filters().end()});
    if (!all.ok()) return server::failed_stream<api::ListContainerMessage>(all.status());
    std::deque<api::ListContainerMessage> messages;
    for (auto& c : *all) to_proto(std::move(c), messages.emplace_back().mutable_container());
    return new server::ListWriter<api::ListContainerMessage>(std::move(messages));
  }
  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* ctx, const api::CreateContainerRequest* req,
                                   api::CreateContainerResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      CTRD_ASSIGN_OR_RETURN(auto c, service_->create(ns, from_proto(req->container())));
      to_proto(std::move(c), resp->mutable_container());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx, const api::UpdateContainerRequest* req,
                                   api::UpdateContainerResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      std::vector<std::string> paths(req->update_mask().paths().begin(), req->update_mask().paths().end());
      CTRD_ASSIGN_OR_RETURN(auto c, service_->update(ns, from_proto(req->container()), paths));
      to_proto(std::move(c), resp->mutable_container());
      return errdefs::Status::Ok();
    });
  }
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const api::DeleteContainerRequest* req,
                                   google::protobuf::Empty*) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string ns, server::namespace_of(*ctx));
      return service_->remove(ns, req->id());
    });
  }

 private:
  std::shared_ptr<ContainersService> service_;
  server::ArenaAllocator<api::ListContainersRequest, api::ListContainersResponse> list_allocator_;
};

}  // namespace

void register_plugin(plugin::Registry& registry) {
  register_service<ContainersService, metadata::DB>(
      registry, "containers-service", plugin::type::kMetadata,
      [](plugin::InitContext& ic, std::shared_ptr<metadata::DB> db) {
        return std::make_shared<ContainersService>(std::move(db), ic.events());
      });
  register_grpc_front_end<GrpcFrontEnd, ContainersService>(registry, "containers", "containers-service");
}

}  // namespace ctrd::services::containers
