#include "runtime/v2/recovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include <fstream>
#include <set>
#include <sstream>

#include "log/log.h"
#include "metadata/db.h"
#include "os/fs.h"
#include "runtime/v2/bundle.h"
#include "runtime/v2/lost_shims.h"
#include "runtime/v2/shim_launcher.h"
#include "runtime/v2/shim_task.h"
#include "runtime/v2/task_events.h"

namespace ctrd::runtime::v2 {
namespace {

namespace shimapi = containerd::task::v2;

std::vector<std::string> subdirectories(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      out.push_back(name);
  }
  ::closedir(d);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string runtime_of_container(const RecoveryContext& context, const std::string& ns,
                                 const std::string& id) {
  if (!context.db) return "";
  auto container = context.db->containers(ns).get(id);
  return container.ok() ? container->runtime.name : "";
}

// The task of one bundle, if it is still to be listed.
std::optional<RecoveredTask> recover_task(const RecoveryContext& context, const std::string& ns,
                                          const std::string& id) {
  const Bundle bundle = Bundle::at(context.state_dir, ns, id);
  const std::string name = ns + "/" + id;
  if (subdirectories(bundle.path()).empty() && !std::ifstream(bundle.file("config.json"))) {
    (void)bundle.remove();
    return std::nullopt;
  }
  const std::string runtime_name = runtime_of_container(context, ns, id);
  std::string binary_path = read_file(bundle.file("shim-binary-path"));
  if (binary_path.empty()) {
    auto resolved = context.launcher.resolve(runtime_name);
    if (!resolved.ok()) {
      log::warn("removing a bundle whose runtime is unknown",
                {{"task", name}, {"error", resolved.status().message()}});
      (void)bundle.remove();
      return std::nullopt;
    }
    binary_path = *resolved;
  }
  RecoveredTask recovered{.task = std::make_shared<ShimTask>(
                              ns, id, runtime_name.empty() ? binary_path : runtime_name, bundle.path()),
                          .binary = context.launcher.binary_at(binary_path)};

  auto shim = context.launcher.reconnect(bundle, context.on_lost(ns, id));
  if (shim.ok()) {
    shimapi::ConnectRequest req;
    req.set_id(id);
    auto connected = (*shim)->call<shimapi::ConnectResponse>("Connect", req, kShimLoadTimeout);
    if (connected.ok() && connected->task_pid() != 0) {
      recovered.task->attach(std::move(shim).value(), connected->task_pid());
      log::info("reconnected to shim", {{"task", name}, {"pid", std::to_string(connected->task_pid())}});
      return recovered;
    }
    if (connected.ok()) {
      // Nothing runs there, and nothing must be left.
      log::warn("shutting down a shim that holds no task", {{"task", name}});
      ShimLauncher::shut_down(**shim, id);
      (void)Shim::cleanup(recovered.binary, bundle);
      (void)bundle.remove();
      return std::nullopt;
    }
    (*shim)->close();
  }
  const runtime::Exit exit = context.lost.clean_up(recovered.binary, *recovered.task);
  if (exit.pid == 0) return std::nullopt;  // no container was ever created
  recovered.task->mark_dead(exit);
  context.events.exit(*recovered.task, exit);
  return recovered;
}

void remove_orphan_work_dirs(const RecoveryContext& context, const std::string& ns,
                             const std::set<std::string>& ids) {
  const std::string dir = context.root_dir + "/" + ns;
  for (const std::string& id : subdirectories(dir)) {
    if (ids.contains(id)) continue;
    std::string work = dir;
    work += '/';
    work += id;
    (void)os::fs::remove_tree(work);
  }
}

}  // namespace

void recover_tasks(const RecoveryContext& context, const std::function<void(RecoveredTask)>& adopt) {
  for (const std::string& ns : subdirectories(context.state_dir)) {
    std::set<std::string> ids;
    for (const std::string& id : subdirectories(context.state_dir + "/" + ns)) {
      if (auto recovered = recover_task(context, ns, id)) {
        ids.insert(id);
        adopt(std::move(*recovered));
      }
    }
    remove_orphan_work_dirs(context, ns, ids);
  }
}

}  // namespace ctrd::runtime::v2
