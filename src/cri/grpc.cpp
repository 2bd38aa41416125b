// The gRPC front end of the CRI plugin: runtime.v1's RuntimeService and
// ImageService, mapped onto CriService. Exec, Attach and PortForward return
// URLs of the streaming server (streaming/server.h). Calls not listed here
// answer Unimplemented (the generated services' default).
#include <cri/runtime/v1/api.grpc.pb.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cri/cri_service.h"
#include "cri/plugin.h"
#include "cri/status_proto.h"
#include "diff/diff.h"
#include "errdefs/grpc_status.h"
#include "executor/worker_pool.h"
#include "images/platform.h"
#include "log/log.h"
#include "metadata/db.h"
#include "os/process.h"
#include "server/service.h"
#include "server/stream.h"
#include "server/unary.h"
#include "services/containers/containers.h"
#include "services/images/images.h"
#include "services/snapshots/snapshots.h"
#include "services/tasks/tasks.h"

namespace ctrd::cri {
namespace {

namespace api = ::runtime::v1;

errdefs::Status no_workloads() {
  return errdefs::Unavailable("cri: pods need the container, snapshot and task services");
}

// What the streaming server checks of every Exec and Attach, as the kubelet's.
errdefs::Status check_stdio(bool tty, bool in, bool out, bool err) {
  if (tty && err) return errdefs::InvalidArgument("tty and stderr cannot both be true");
  if (!in && !out && !err) return errdefs::InvalidArgument("one of stdin, stdout, or stderr must be set");
  return errdefs::Status::Ok();
}

class RuntimeFrontEnd final : public api::RuntimeService::CallbackService {
 public:
  RuntimeFrontEnd(std::shared_ptr<CriService> service, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(std::move(service)), blocking_(std::move(blocking)) {}

  // Pod and container calls start processes and wait for them: off the
  // callback threads, on the daemon's pool for blocking work.
  template <typename Fn>
  grpc::ServerUnaryReactor* blocking(grpc::CallbackServerContext* ctx, Fn fn) {
    if (service_->sandboxes() == nullptr) return server::unary(ctx, [] { return no_workloads(); });
    return server::unary_blocking(ctx, *blocking_, std::move(fn));
  }

  grpc::ServerUnaryReactor* RunPodSandbox(grpc::CallbackServerContext* ctx,
                                          const api::RunPodSandboxRequest* req,
                                          api::RunPodSandboxResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string id, service->sandboxes()->run(req->config(), req->runtime_handler()));
      resp->set_pod_sandbox_id(id);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* StopPodSandbox(grpc::CallbackServerContext* ctx,
                                           const api::StopPodSandboxRequest* req,
                                           api::StopPodSandboxResponse*) override {
    return blocking(ctx,
                    [service = service_, req] { return service->stop_pod_sandbox(req->pod_sandbox_id()); });
  }

  grpc::ServerUnaryReactor* RemovePodSandbox(grpc::CallbackServerContext* ctx,
                                             const api::RemovePodSandboxRequest* req,
                                             api::RemovePodSandboxResponse*) override {
    return blocking(ctx,
                    [service = service_, req] { return service->remove_pod_sandbox(req->pod_sandbox_id()); });
  }

  grpc::ServerUnaryReactor* PodSandboxStatus(grpc::CallbackServerContext* ctx,
                                             const api::PodSandboxStatusRequest* req,
                                             api::PodSandboxStatusResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->sandboxes() == nullptr) return no_workloads();
      CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, service_->sandboxes()->store().get(req->pod_sandbox_id()));
      to_proto(sandbox, resp->mutable_status());
      if (req->verbose()) {
        nlohmann::json info{{"pid", sandbox.pid},
                            {"runtimeHandler", sandbox.metadata.runtime_handler},
                            {"netNamespacePath", sandbox.metadata.netns_path},
                            {"image", service_->config().sandbox_image}};
        (*resp->mutable_info())["info"] = info.dump();
      }
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ListPodSandbox(grpc::CallbackServerContext* ctx,
                                           const api::ListPodSandboxRequest* req,
                                           api::ListPodSandboxResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->sandboxes() == nullptr) return no_workloads();
      for (const auto& sandbox : service_->sandboxes()->store().list())
        if (matches(req->filter(), sandbox)) to_proto(sandbox, resp->add_items());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* CreateContainer(grpc::CallbackServerContext* ctx,
                                            const api::CreateContainerRequest* req,
                                            api::CreateContainerResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::string id,
                            service->containers()->create(req->pod_sandbox_id(), req->config()));
      resp->set_container_id(id);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* StartContainer(grpc::CallbackServerContext* ctx,
                                           const api::StartContainerRequest* req,
                                           api::StartContainerResponse*) override {
    return blocking(ctx,
                    [service = service_, req] { return service->containers()->start(req->container_id()); });
  }

  grpc::ServerUnaryReactor* StopContainer(grpc::CallbackServerContext* ctx,
                                          const api::StopContainerRequest* req,
                                          api::StopContainerResponse*) override {
    return blocking(ctx, [service = service_, req] {
      return service->containers()->stop(req->container_id(),
                                         std::chrono::seconds(std::max<int64_t>(req->timeout(), 0)));
    });
  }

  grpc::ServerUnaryReactor* RemoveContainer(grpc::CallbackServerContext* ctx,
                                            const api::RemoveContainerRequest* req,
                                            api::RemoveContainerResponse*) override {
    return blocking(ctx,
                    [service = service_, req] { return service->containers()->remove(req->container_id()); });
  }

  grpc::ServerUnaryReactor* ContainerStatus(grpc::CallbackServerContext* ctx,
                                            const api::ContainerStatusRequest* req,
                                            api::ContainerStatusResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->containers() == nullptr) return no_workloads();
      CTRD_ASSIGN_OR_RETURN(CriContainer container, service_->containers()->store().get(req->container_id()));
      to_proto(container, resp->mutable_status());
      if (req->verbose()) {
        nlohmann::json info{{"sandboxID", container.metadata.sandbox_id}, {"pid", container.status.pid}};
        (*resp->mutable_info())["info"] = info.dump();
      }
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ListContainers(grpc::CallbackServerContext* ctx,
                                           const api::ListContainersRequest* req,
                                           api::ListContainersResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->containers() == nullptr) return no_workloads();
      for (const auto& container : service_->containers()->store().list())
        if (matches(req->filter(), container)) to_proto(container, resp->add_containers());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ExecSync(grpc::CallbackServerContext* ctx, const api::ExecSyncRequest* req,
                                     api::ExecSyncResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(
          ExecSyncResult result,
          service->containers()->exec_sync(req->container_id(), {req->cmd().begin(), req->cmd().end()},
                                           std::chrono::seconds(std::max<int64_t>(req->timeout(), 0))));
      resp->set_stdout(std::move(result.stdout));
      resp->set_stderr(std::move(result.stderr));
      resp->set_exit_code(result.exit_code);
      return errdefs::Status::Ok();
    });
  }

  errdefs::StatusOr<CriContainer> running_container(const std::string& id) {
    if (id.empty()) return errdefs::InvalidArgument("missing required container_id");
    CTRD_ASSIGN_OR_RETURN(CriContainer container, service_->containers()->store().get(id));
    if (container.status.state != api::CONTAINER_RUNNING)
      return errdefs::FailedPrecondition("container " + errdefs::quoted(container.metadata.id) +
                                         " is not running");
    return container;
  }

  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* ctx, const api::ExecRequest* req,
                                 api::ExecResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->containers() == nullptr) return no_workloads();
      CTRD_RETURN_IF_ERROR(check_stdio(req->tty(), req->stdin(), req->stdout(), req->stderr()));
      if (req->cmd().empty()) return errdefs::InvalidArgument("Exec needs a command");
      CTRD_ASSIGN_OR_RETURN(CriContainer container, running_container(req->container_id()));
      CTRD_ASSIGN_OR_RETURN(std::string url,
                            service_->exec_url({.container_id = container.metadata.id,
                                                .cmd = {req->cmd().begin(), req->cmd().end()},
                                                .tty = req->tty(),
                                                .stdin = req->stdin(),
                                                .stdout = req->stdout(),
                                                .stderr = req->stderr()}));
      resp->set_url(url);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* Attach(grpc::CallbackServerContext* ctx, const api::AttachRequest* req,
                                   api::AttachResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->containers() == nullptr) return no_workloads();
      CTRD_RETURN_IF_ERROR(check_stdio(req->tty(), req->stdin(), req->stdout(), req->stderr()));
      CTRD_ASSIGN_OR_RETURN(CriContainer container, running_container(req->container_id()));
      CTRD_ASSIGN_OR_RETURN(std::string url, service_->attach_url({.container_id = container.metadata.id,
                                                                   .tty = req->tty(),
                                                                   .stdin = req->stdin(),
                                                                   .stdout = req->stdout(),
                                                                   .stderr = req->stderr()}));
      resp->set_url(url);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* PortForward(grpc::CallbackServerContext* ctx, const api::PortForwardRequest* req,
                                        api::PortForwardResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      if (service_->sandboxes() == nullptr) return no_workloads();
      if (req->pod_sandbox_id().empty()) return errdefs::InvalidArgument("missing required pod_sandbox_id");
      CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, service_->sandboxes()->store().get(req->pod_sandbox_id()));
      if (sandbox.state != SandboxState::kReady)
        return errdefs::FailedPrecondition("pod sandbox " + errdefs::quoted(sandbox.metadata.id) +
                                           " is not ready");
      CTRD_ASSIGN_OR_RETURN(std::string url,
                            service_->port_forward_url({.pod_sandbox_id = sandbox.metadata.id,
                                                        .ports = {req->port().begin(), req->port().end()}}));
      resp->set_url(url);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ContainerStats(grpc::CallbackServerContext* ctx,
                                           const api::ContainerStatsRequest* req,
                                           api::ContainerStatsResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(CriContainer container, service->containers()->store().get(req->container_id()));
      *resp->mutable_stats() = service->containers()->stats(container);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ListContainerStats(grpc::CallbackServerContext* ctx,
                                               const api::ListContainerStatsRequest* req,
                                               api::ListContainerStatsResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      api::ContainerFilter filter;
      filter.set_id(req->filter().id());
      filter.set_pod_sandbox_id(req->filter().pod_sandbox_id());
      *filter.mutable_label_selector() = req->filter().label_selector();
      for (const auto& container : service->containers()->store().list())
        if (matches(filter, container)) *resp->add_stats() = service->containers()->stats(container);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* PodSandboxStats(grpc::CallbackServerContext* ctx,
                                            const api::PodSandboxStatsRequest* req,
                                            api::PodSandboxStatsResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(Sandbox sandbox, service->sandboxes()->store().get(req->pod_sandbox_id()));
      *resp->mutable_stats() = service->pod_sandbox_stats(sandbox);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ListPodSandboxStats(grpc::CallbackServerContext* ctx,
                                                const api::ListPodSandboxStatsRequest* req,
                                                api::ListPodSandboxStatsResponse* resp) override {
    return blocking(ctx, [service = service_, req, resp]() -> errdefs::Status {
      api::PodSandboxFilter filter;
      filter.set_id(req->filter().id());
      *filter.mutable_label_selector() = req->filter().label_selector();
      for (const auto& sandbox : service->sandboxes()->store().list())
        if (matches(filter, sandbox)) *resp->add_stats() = service->pod_sandbox_stats(sandbox);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* UpdateContainerResources(grpc::CallbackServerContext* ctx,
                                                     const api::UpdateContainerResourcesRequest* req,
                                                     api::UpdateContainerResourcesResponse*) override {
    return blocking(ctx, [service = service_, req] {
      return service->containers()->update_resources(req->container_id(), req->linux(),
                                                     {req->annotations().begin(), req->annotations().end()});
    });
  }

  grpc::ServerWriteReactor<api::ContainerEventResponse>* GetContainerEvents(
      grpc::CallbackServerContext*, const api::GetEventsRequest*) override {
    // The response headers go first: a client that has them is subscribed.
    auto subscriber = service_->container_events().subscribe();
    auto* writer = new server::QueueWriter<api::ContainerEventResponse>(
        {.next =
             [subscriber](api::ContainerEventResponse* out) {
               auto event = subscriber->pop();
               if (event) *out = std::move(*event);
               return event.has_value();
             },
         .closed = [subscriber] { return subscriber->closed(); },
         .unsubscribe = [service = service_,
                         subscriber] { service->container_events().unsubscribe(subscriber); }},
        /*announce=*/true);
    subscriber->set_notify(writer->waker());
    writer->start();
    return writer;
  }

  grpc::ServerUnaryReactor* ReopenContainerLog(grpc::CallbackServerContext* ctx,
                                               const api::ReopenContainerLogRequest* req,
                                               api::ReopenContainerLogResponse*) override {
    return blocking(
        ctx, [service = service_, req] { return service->containers()->reopen_log(req->container_id()); });
  }

  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* ctx, const api::VersionRequest*,
                                    api::VersionResponse* resp) override {
    return server::unary(ctx, [&] {
      const RuntimeVersion v = service_->version();
      resp->set_version(v.version);
      resp->set_runtime_name(v.runtime_name);
      resp->set_runtime_version(v.runtime_version);
      resp->set_runtime_api_version(v.runtime_api_version);
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const api::StatusRequest* req,
                                   api::StatusResponse* resp) override {
    return server::unary(ctx, [&] {
      RuntimeStatus status = service_->status(req->verbose());
      for (const auto& c : status.conditions) {
        auto* out = resp->mutable_status()->add_conditions();
        out->set_type(c.type);
        out->set_status(c.status);
        out->set_reason(c.reason);
        out->set_message(c.message);
      }
      resp->mutable_info()->insert(status.info.begin(), status.info.end());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* UpdateRuntimeConfig(grpc::CallbackServerContext* ctx,
                                                const api::UpdateRuntimeConfigRequest* req,
                                                api::UpdateRuntimeConfigResponse*) override {
    return server::unary(ctx, [&] {
      return service_->update_runtime_config(req->runtime_config().network_config().pod_cidr());
    });
  }

 private:
  std::shared_ptr<CriService> service_;
  std::shared_ptr<executor::WorkerPool> blocking_;
};

void to_proto(const CriImage& image, api::Image* out) {
  out->set_id(image.id);
  for (const auto& tag : image.repo_tags) out->add_repo_tags(tag);
  for (const auto& digest : image.repo_digests) out->add_repo_digests(digest);
  out->set_size(image.size);
  const ImageUser user = image_user(image.config.user);
  if (user.uid) out->mutable_uid()->set_value(*user.uid);
  out->set_username(user.username);
  out->mutable_spec()->set_image(image.id);
  out->set_pinned(image.pinned);
}

errdefs::Status no_image_store() {
  return errdefs::Unavailable("cri: the image service needs the metadata plugin");
}

class ImageFrontEnd final : public api::ImageService::CallbackService {
 public:
  ImageFrontEnd(std::shared_ptr<CriService> service, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(std::move(service)), blocking_(std::move(blocking)) {}

  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* ctx, const api::ListImagesRequest* req,
                                       api::ListImagesResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      ImageStore* images = service_->images();
      if (images == nullptr) return no_image_store();
      if (const std::string& only = req->filter().image().image(); !only.empty()) {
        auto image = images->get(only);
        if (image.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
        CTRD_RETURN_IF_ERROR(image.status());
        to_proto(*image, resp->add_images());
        return errdefs::Status::Ok();
      }
      CTRD_ASSIGN_OR_RETURN(auto all, images->list());
      for (const auto& image : all) to_proto(image, resp->add_images());
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ImageStatus(grpc::CallbackServerContext* ctx, const api::ImageStatusRequest* req,
                                        api::ImageStatusResponse* resp) override {
    return server::unary(ctx, [&]() -> errdefs::Status {
      ImageStore* images = service_->images();
      if (images == nullptr) return no_image_store();
      if (req->image().image().empty()) return errdefs::InvalidArgument("ImageSpec.image is required");
      auto image = images->get(req->image().image());
      // An image that is not there is an empty answer, not an error.
      if (image.status().code() == errdefs::Code::kNotFound) return errdefs::Status::Ok();
      CTRD_RETURN_IF_ERROR(image.status());
      to_proto(*image, resp->mutable_image());
      if (req->verbose()) {
        nlohmann::json info{{"id", image->id},
                            {"repoTags", image->repo_tags},
                            {"repoDigests", image->repo_digests},
                            {"size", image->size},
                            {"user", image->config.user},
                            {"env", image->config.env},
                            {"entrypoint", image->config.entrypoint},
                            {"cmd", image->config.cmd},
                            {"workingDir", image->config.working_dir},
                            {"volumes", image->config.volumes},
                            {"stopSignal", image->config.stop_signal},
                            {"labels", image->config.labels}};
        (*resp->mutable_info())["info"] = info.dump();
      }
      return errdefs::Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* ctx, const api::PullImageRequest* req,
                                      api::PullImageResponse* resp) override {
    if (service_->puller() == nullptr)
      return server::unary(
          ctx, [] { return errdefs::Unavailable("cri: pulling needs the metadata and diff plugins"); });
    if (req->image().image().empty())
      return server::unary(ctx, [] { return errdefs::InvalidArgument("ImageSpec.image is required"); });
    const auto& a = req->auth();
    PullAuth auth{.username = a.username(),
                  .password = a.password(),
                  .auth = a.auth(),
                  .identity_token = a.identity_token(),
                  .registry_token = a.registry_token()};
    // A pull takes as long as the registry does: off the callback threads.
    return server::unary_blocking(
        ctx, *blocking_, [service = service_, ref = req->image().image(), auth, resp]() -> errdefs::Status {
          CTRD_ASSIGN_OR_RETURN(std::string id, service->puller()->pull(ref, auth));
          resp->set_image_ref(id);
          return errdefs::Status::Ok();
        });
  }

  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* ctx, const api::RemoveImageRequest* req,
                                        api::RemoveImageResponse*) override {
    if (service_->images() == nullptr) return server::unary(ctx, [] { return no_image_store(); });
    if (req->image().image().empty())
      return server::unary(ctx, [] { return errdefs::InvalidArgument("ImageSpec.image is required"); });
    // The last record's removal waits for a garbage collection.
    return server::unary_blocking(ctx, *blocking_, [service = service_, ref = req->image().image()] {
      return service->images()->remove(ref);
    });
  }

  grpc::ServerUnaryReactor* ImageFsInfo(grpc::CallbackServerContext* ctx, const api::ImageFsInfoRequest*,
                                        api::ImageFsInfoResponse* resp) override {
    return server::unary_blocking(ctx, *blocking_, [service = service_, resp] {
      const FilesystemUsage usage = service->image_fs_usage();
      auto* fs = resp->add_image_filesystems();
      fs->set_timestamp(
          std::chrono::duration_cast<std::chrono::nanoseconds>(usage.measured_at.time_since_epoch()).count());
      fs->mutable_fs_id()->set_mountpoint(usage.mountpoint);
      fs->mutable_used_bytes()->set_value(usage.used_bytes);
      fs->mutable_inodes_used()->set_value(usage.inodes_used);
      return errdefs::Status::Ok();
    });
  }

 private:
  std::shared_ptr<CriService> service_;
  std::shared_ptr<executor::WorkerPool> blocking_;
};

// What the plugin exports: both services, on every gRPC listener.
class CriGrpc final : public server::GrpcService {
 public:
  CriGrpc(const std::shared_ptr<CriService>& service, std::shared_ptr<executor::WorkerPool> blocking)
      : service_(service), runtime_(service, blocking), images_(service, std::move(blocking)) {}

  void register_grpc(grpc::ServerBuilder& builder) override {
    builder.RegisterService(&runtime_);
    builder.RegisterService(&images_);
  }

 private:
  std::shared_ptr<CriService> service_;
  RuntimeFrontEnd runtime_;
  ImageFrontEnd images_;
};

// ctrd-pause beside the daemon's executable (as installed, and in the build
// tree), else on PATH.
std::string pause_binary() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path() / "ctrd-pause";
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  auto found = os::look_path("ctrd-pause");
  return found.ok() ? *found : "";
}

}  // namespace

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGRPC),
      .id = "cri",
      .requirements = {std::string(plugin::type::kService), std::string(plugin::type::kMetadata),
                       std::string(plugin::type::kDiff)},
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        auto db = ic.get<metadata::DB>(plugin::type::kMetadata);
        auto images = ic.get_by_id<services::images::ImagesService>(plugin::type::kService, "images-service");
        auto applier = ic.get<diff::Applier>(plugin::type::kDiff);
        std::unique_ptr<ImageStore> store;
        std::unique_ptr<ImagePuller> puller;
        if (db.ok() && images.ok()) {
          store = std::make_unique<ImageStore>(*db, *images, ctrd::images::host_platform());
          if (applier.ok())
            puller =
                std::make_unique<ImagePuller>(config, *db, *images, *applier, ctrd::images::host_platform());
        }
        // The daemon's root: the plugin's own directory is one below it.
        const std::string root = std::filesystem::path(ic.root()).parent_path().string();
        auto service =
            std::make_shared<CriService>(std::move(config), root, std::move(store), std::move(puller));
        auto containers = ic.get_by_id<services::containers::ContainersService>(plugin::type::kService,
                                                                                "containers-service");
        auto snapshots =
            ic.get_by_id<services::snapshots::SnapshotsService>(plugin::type::kService, "snapshots-service");
        auto tasks = ic.get_by_id<services::tasks::TasksService>(plugin::type::kService, "tasks-service");
        if (db.ok() && containers.ok() && snapshots.ok() && tasks.ok()) {
          service->enable_workloads(Backend{.config = nullptr,
                                            .root = ic.root(),
                                            .state = ic.state(),
                                            .db = *db,
                                            .containers = *containers,
                                            .snapshots = *snapshots,
                                            .tasks = *tasks,
                                            .images = nullptr,
                                            .puller = nullptr,
                                            .networks = {},
                                            .pause_binary = pause_binary(),
                                            .blocking = ic.blocking()},
                                    ic.events());
        } else {
          log::warn(
              "cri: pods and containers are unavailable: the container, snapshot or task service is not "
              "loaded");
        }
        return plugin::Instance::of<CriGrpc, server::GrpcService>(
            std::make_shared<CriGrpc>(std::move(service), ic.blocking()));
      },
  });
}

}  // namespace ctrd::cri
