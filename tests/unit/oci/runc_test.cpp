// Checks that runc accepts and runs a spec from oci/spec.h: a bundle whose
// rootfs is Debian's static busybox, run to completion (root only).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "oci/spec.h"
#include "support/temp_dir.h"

namespace ctrd::oci {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBusybox = "/bin/busybox";

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string shell_quoted(const std::string& s) { return "'" + s + "'"; }

// Deletes the container whatever the test's outcome, so a failed run leaves
// no runc state or cgroup behind.
class RuncContainer {
 public:
  RuncContainer(std::string root, std::string id) : root_(std::move(root)), id_(std::move(id)) {}
  ~RuncContainer() {
    const std::string command =
        "runc --root " + shell_quoted(root_) + " delete -f " + shell_quoted(id_) + " >/dev/null 2>&1";
    [[maybe_unused]] int ignored = std::system(command.c_str());
  }
  RuncContainer(const RuncContainer&) = delete;
  RuncContainer& operator=(const RuncContainer&) = delete;

 private:
  std::string root_;
  std::string id_;
};

int current_oom_score_adj() { return std::stoi(read_file("/proc/self/oom_score_adj")); }

// A bundle with a busybox rootfs, and a run of a spec in it.
class Runc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "runc needs root";
    if (!fs::exists(kBusybox)) GTEST_SKIP() << "no static busybox (busybox-static)";
    if (std::system("runc --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no runc";
    const fs::path bin = bundle() / "rootfs" / "bin";
    fs::create_directories(bin);
    fs::copy_file(kBusybox, bin / "busybox");
    fs::create_symlink("busybox", bin / "sh");
    fs::create_symlink("busybox", bin / "true");
  }

  fs::path bundle() const { return dir_.path(); }
  std::string id() const { return "ctrd-oci-test-" + std::to_string(getpid()); }

  // Writes config.json and runs it to completion; the process's exit code,
  // or -1 if runc itself did not exit normally.
  int run(const nlohmann::json& spec) {
    {
      std::ofstream config(bundle() / "config.json");
      config << spec.dump(2);
    }
    const std::string runc_root = (bundle() / "runc").string();
    RuncContainer cleanup(runc_root, id());
    const std::string command = "runc --root " + shell_quoted(runc_root) + " run --bundle " +
                                shell_quoted(bundle().string()) + " " + shell_quoted(id()) + " </dev/null >" +
                                shell_quoted(out()) + " 2>" + shell_quoted(err());
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string out() const { return (bundle() / "stdout").string(); }
  std::string err() const { return (bundle() / "stderr").string(); }
  std::string output() const { return "stdout: " + read_file(out()) + "\nstderr: " + read_file(err()); }

  // The spec the CRI would build for a plain container, run by runc here.
  nlohmann::json container_spec(const std::vector<std::string>& args) const {
    nlohmann::json spec = default_unix_spec(id());
    // One level only: runc delete removes the container's cgroup, not parents.
    set_cgroups_path(spec, "/" + id());
    set_process_args(spec, args);
    set_env(spec, {"HOME=/root", "CTRD=1"});
    set_env(spec, {"CTRD=2"});
    set_cwd(spec, "/");
    set_hostname(spec, "oci-test");
    set_user(spec, 0, 0, {1, 2});
    set_sysctls(spec, {{"net.ipv4.ip_forward", "0"}});
    set_annotations(spec, {{"io.kubernetes.cri.container-type", "container"}});
    set_capabilities(spec, {"NET_ADMIN"}, {"MKNOD"});
    set_readonly_rootfs(spec, true);
    // Lowering the score needs CAP_SYS_RESOURCE, which this machine's root lacks.
    set_oom_score_adj(spec, current_oom_score_adj());
    EXPECT_TRUE(add_mount(spec, {"/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777"}}).ok());
    return spec;
  }

 private:
  ctrd::testing::TempDir dir_;
};

TEST_F(Runc, RunsGeneratedSpec) { EXPECT_EQ(run(container_spec({"/bin/busybox", "true"})), 0) << output(); }

TEST_F(Runc, ProcessSeesTheModifiers) {
  const std::string script =
      "test \"$CTRD\" = 2 && test \"$(hostname)\" = oci-test && ! touch /x 2>/dev/null && touch /tmp/x";
  EXPECT_EQ(run(container_spec({"/bin/sh", "-c", script})), 0) << output();
}

TEST_F(Runc, ReportsTheProcessExitCode) {
  EXPECT_EQ(run(container_spec({"/bin/sh", "-c", "exit 3"})), 3) << output();
}

}  // namespace
}  // namespace ctrd::oci
