#include "runtime/v2/shim_launcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include <sstream>
#include <vector>

#include "log/log.h"
#include "os/dirs.h"
#include "os/process.h"

namespace ctrd::runtime::v2 {
namespace {

namespace shimapi = containerd::task::v2;

}  // namespace

std::string shim_binary_name(const std::string& runtime) {
  std::vector<std::string> parts;
  std::stringstream in(runtime);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  if (parts.size() < 2) return "";
  return "containerd-shim-" + parts[parts.size() - 2] + "-" + parts.back();
}

ShimBinary ShimLauncher::binary_at(const std::string& path) const {
  return ShimBinary{.path = path,
                    .grpc_address = options_.grpc_address,
                    .ttrpc_address = options_.ttrpc_address,
                    .publish_binary = options_.publish_binary,
                    .debug = options_.debug,
                    .sched_core = options_.sched_core};
}

errdefs::StatusOr<std::string> ShimLauncher::resolve(const std::string& runtime) {
  CTRD_ASSIGN_OR_RETURN(std::string path, find(runtime));
  if (auto trusted = os::check_trusted_file(path); !trusted.ok()) {
    log::warn("refusing shim binary", {{"runtime", runtime}, {"path", path}, {"error", trusted.message()}});
    return errdefs::PermissionDenied("refusing shim binary " + path + " for runtime " + runtime + ": " +
                                     trusted.message());
  }
  return path;
}

errdefs::StatusOr<std::string> ShimLauncher::find(const std::string& runtime) {
  if (runtime.empty()) return errdefs::InvalidArgument("no runtime name");
  if (runtime.front() == '/') {
    struct stat st {};
    if (::stat(runtime.c_str(), &st) != 0)
      return errdefs::FromErrno(errno, "invalid custom binary path " + runtime);
    return runtime;
  }
  const std::string name = shim_binary_name(runtime);
  if (name.empty())
    return errdefs::InvalidArgument("invalid runtime name " + runtime +
                                    ", correct runtime name should be either format like "
                                    "`io.containerd.runc.v1` or a full path to the binary");
  {
    std::lock_guard lock(mu_);
    if (auto it = paths_.find(name); it != paths_.end()) return it->second;
  }
  auto found = os::look_path(name);
  if (!found.ok()) {
    const std::string self = options_.publish_binary;
    const std::string beside = self.substr(0, self.rfind('/') + 1) + name;
    if (::access(beside.c_str(), X_OK) != 0)
      return errdefs::NotFound("runtime \"" + runtime + "\" binary not installed \"" + name + "\"");
    found = beside;
  }
  std::lock_guard lock(mu_);
  paths_[name] = *found;
  return *found;
}

errdefs::StatusOr<ShimLauncher::Started> ShimLauncher::start(const ShimBinary& binary, const Bundle& bundle,
                                                             const CreateOptions& options,
                                                             std::function<void()> on_lost) {
  const std::optional<Any>& shim_options =
      options.task_options ? options.task_options : options.runtime_options;
  auto shim = Shim::start(binary, bundle, shim_options, connections_, std::move(on_lost));
  if (!shim.ok()) return shim.status().with_context("failed to start shim");

  shimapi::CreateTaskRequest req;
  req.set_id(bundle.id());
  req.set_bundle(bundle.path());
  req.set_stdin(options.io.stdin);
  req.set_stdout(options.io.stdout);
  req.set_stderr(options.io.stderr);
  req.set_terminal(options.io.terminal);
  req.set_checkpoint(options.checkpoint);
  if (shim_options) *req.mutable_options() = *shim_options;
  for (const auto& m : options.rootfs) {
    auto* out = req.add_rootfs();
    out->set_type(m.type);
    out->set_source(m.source);
    for (const auto& o : m.options) out->add_options(o);
  }
  auto created = (*shim)->call<shimapi::CreateTaskResponse>("Create", req);
  if (!created.ok()) {
    shut_down(**shim, bundle.id());
    return created.status().with_context("failed to create shim task");
  }
  return Started{.shim = std::move(shim).value(), .pid = created->pid()};
}

errdefs::StatusOr<std::shared_ptr<Shim>> ShimLauncher::reconnect(const Bundle& bundle,
                                                                 std::function<void()> on_lost) {
  return Shim::connect(bundle, connections_, std::move(on_lost));
}

void ShimLauncher::shut_down(Shim& shim, const std::string& id) {
  shimapi::DeleteRequest del;
  del.set_id(id);
  (void)shim.call<shimapi::DeleteResponse>("Delete", del, kShimShutdownTimeout);
  shimapi::ShutdownRequest req;
  req.set_id(id);
  req.set_now(true);
  (void)shim.call<google::protobuf::Empty>("Shutdown", req, kShimShutdownTimeout);
  shim.close();
}

}  // namespace ctrd::runtime::v2
