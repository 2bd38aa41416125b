// Loadable plugins end to end, as a plugin author and an operator meet them:
// `cmake --install` ctrd, build examples/plugin_so out of tree against the
// install with find_package(ctrd), drop the .so in a plugin_dir, and see the
// daemon serve it; a plugin stamped for another ABI is refused, loudly, and
// the daemon serves on.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

constexpr auto kBuildTimeout = std::chrono::seconds(300);

// One install and two builds of the example for the whole suite: they are the
// slow part, and every test only reads them.
class LoadablePlugins : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = std::make_unique<TempDir>(trusted_temp_parent());
    const fs::path prefix = work_->path() / "prefix";
    auto r = run({"/usr/bin/env", "cmake", "--install", CTRD_BUILD_DIR, "--prefix", prefix.string()},
                 std::chrono::seconds(120));
    if (r.exit_code != 0) {
      setup_error_ = "cmake --install failed:\n" + r.all();
      return;
    }
    good_ = build_example(prefix, "good", {});
    if (setup_error_.empty()) bogus_ = build_example(prefix, "bogus", {"-DCTRD_PLUGIN_ABI_OVERRIDE=bogus"});
  }
  static void TearDownTestSuite() { work_.reset(); }

  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  // Configures and builds the example out of tree; returns the .so.
  static fs::path build_example(const fs::path& prefix, const std::string& name,
                                const std::vector<std::string>& defines) {
    const fs::path build = work_->path() / ("example-" + name);
    std::vector<std::string> configure{"/usr/bin/env",
                                       "cmake",
                                       "-S",
                                       CTRD_EXAMPLE_PLUGIN_DIR,
                                       "-B",
                                       build.string(),
                                       "-G",
                                       "Ninja",
                                       "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                                       "-DCMAKE_PREFIX_PATH=" + prefix.string()};
    configure.insert(configure.end(), defines.begin(), defines.end());
    auto r = run(configure, kBuildTimeout);
    if (r.exit_code == 0) r = run({"/usr/bin/env", "cmake", "--build", build.string(), "-j1"}, kBuildTimeout);
    if (r.exit_code != 0) setup_error_ = "building the example plugin (" + name + ") failed:\n" + r.all();
    return build / "ctrd_example_plugin.so";
  }

  // A plugin_dir holding `files` (source -> name), inside the suite's tree.
  static fs::path plugin_dir(const std::string& name,
                             const std::vector<std::pair<fs::path, std::string>>& files) {
    const fs::path dir = work_->path() / name;
    fs::create_directories(dir);
    for (const auto& [from, to] : files) fs::copy_file(from, dir / to, fs::copy_options::overwrite_existing);
    return dir;
  }

  static std::string config_for(const fs::path& dir, const std::string& extra = "") {
    return "version = 2\nplugin_dir = \"" + dir.string() + "\"\n" + extra;
  }

  // With the example plugin required and `dir` as plugin_dir, ctrd does not
  // start, and its log says why (`reason`) and names the plugin.
  static void expect_required_plugin_stops_start(const fs::path& dir, const std::string& reason) {
    Daemon d({.config = config_for(dir, "required_plugins = [\"io.containerd.internal.v1.example\"]\n"),
              .wait_ready = false});
    auto code = d.process().wait(std::chrono::seconds(60));
    ASSERT_TRUE(code.has_value()) << "ctrd kept running without a required plugin";
    EXPECT_NE(*code, 0);
    EXPECT_THAT(d.log(), AllOf(HasSubstr(reason), HasSubstr("io.containerd.internal.v1.example")));
  }

  static inline std::unique_ptr<TempDir> work_;
  static inline std::string setup_error_;
  static inline fs::path good_, bogus_;
};

TEST_F(LoadablePlugins, InstallLaysOutThePluginPackage) {
  const fs::path prefix = work_->path() / "prefix";
  for (const char* f :
       {"include/ctrd/plugin/loadable.h", "include/ctrd/plugin/abi.h", "include/ctrd/plugin/abi_version.h",
        "include/ctrd/plugin/plugin.h", "include/ctrd/errdefs/errdefs.h", "include/ctrd/config/binder.h",
        "include/ctrd/log/log.h"}) {
    EXPECT_TRUE(fs::exists(prefix / f)) << f;
  }
  bool config_found = false;
  for (const auto& e : fs::recursive_directory_iterator(prefix)) {
    if (e.path().filename() == "ctrdConfigVersion.cmake") {
      config_found = fs::exists(e.path().parent_path() / "ctrdConfig.cmake");
    }
  }
  EXPECT_TRUE(config_found) << "no ctrdConfig.cmake + ctrdConfigVersion.cmake under " << prefix;
}

TEST_F(LoadablePlugins, DaemonServesTheExamplePluginAndRefusesTheMisstampedOne) {
  // The misstamped copy sorts first: refusing it must not keep the good one out.
  const fs::path dir = plugin_dir("plugins-both", {{bogus_, "a-bogus.so"}, {good_, "b-example.so"}});
  Daemon d({.config = config_for(dir,
                                 "[plugins.\"io.containerd.internal.v1.example\"]\n"
                                 "  greeting = \"hello from the test\"\n")});

  auto ls = d.ctr({"plugins", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.all();
  EXPECT_TRUE(std::regex_search(ls.out, std::regex(R"(io\.containerd\.internal\.v1\s+example\s+-\s+ok)")))
      << ls.out;

  auto detailed = d.ctr({"plugins", "ls", "-d", "id==example"});
  ASSERT_EQ(detailed.exit_code, 0) << detailed.all();
  EXPECT_THAT(detailed.out,
              AllOf(HasSubstr("example"), HasSubstr("greeting"), HasSubstr("hello from the test")));

  const std::string log = d.log();
  EXPECT_THAT(log, AllOf(HasSubstr("refusing plugin file " + (dir / "a-bogus.so").string()),
                         HasSubstr("ABI stamp mismatch"), HasSubstr("plugin has \\\"bogus\\\""),
                         HasSubstr("ctrd expects \\\"ctrd-plugin-abi/1;")));
  EXPECT_THAT(log, HasSubstr("loaded plugin file"));
  // The plugin's own code ran in the daemon: its log line, through ctrd's logger.
  EXPECT_THAT(log, HasSubstr("example plugin says"));

  auto version = d.ctr({"version"});
  EXPECT_EQ(version.exit_code, 0) << version.all();
}

TEST_F(LoadablePlugins, RequiredPluginFromARefusedFileStopsTheDaemonNamingIt) {
  expect_required_plugin_stops_start(plugin_dir("plugins-bogus", {{bogus_, "example.so"}}),
                                     "ABI stamp mismatch");
}

TEST_F(LoadablePlugins, PluginsGraphShowsLoadedPlugins) {
  const fs::path dir = plugin_dir("plugins-graph", {{good_, "example.so"}});
  TempDir tmp;
  const fs::path config = tmp.path() / "config.toml";
  std::ofstream(config) << config_for(dir);
  auto r = run({ctrd_binary(), "--config", config.string(), "plugins", "graph"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("io.containerd.internal.v1.example"));
}

// The example plugin is not served, and the log names the file and why.
void expect_refused(Daemon& d, const fs::path& file, const std::string& why) {
  auto ls = d.ctr({"plugins", "ls", "id==example"});
  ASSERT_EQ(ls.exit_code, 0) << ls.all();
  EXPECT_THAT(ls.out, Not(HasSubstr("example")));
  EXPECT_THAT(d.log(), AllOf(HasSubstr("refusing plugin file " + file.string()), HasSubstr(why)));
  EXPECT_THAT(d.log(), Not(HasSubstr("example plugin says")));
}

TEST_F(LoadablePlugins, WorldWritablePluginDirIsRefused) {
  const fs::path dir = plugin_dir("plugins-world", {{good_, "example.so"}});
  fs::permissions(dir, fs::perms::all);
  Daemon d({.config = config_for(dir)});
  expect_refused(d, dir / "example.so", dir.string() + " has mode 0777, writable by group or others");
}

TEST_F(LoadablePlugins, GroupWritablePluginFileIsRefused) {
  const fs::path dir = plugin_dir("plugins-group", {{good_, "example.so"}});
  fs::permissions(dir / "example.so", fs::perms::group_write, fs::perm_options::add);
  Daemon d({.config = config_for(dir)});
  expect_refused(d, dir / "example.so", "writable by group or others");
  EXPECT_THAT(d.log(), HasSubstr((dir / "example.so").string() + " has mode 0"));
}

TEST_F(LoadablePlugins, SymlinkIntoTmpIsRefusedAndARequiredPluginStopsTheStart) {
  TempDir outside;  // under /tmp, which anyone may write to
  fs::copy_file(good_, outside.path() / "example.so");
  const fs::path dir = plugin_dir("plugins-link", {});
  fs::create_symlink(outside.path() / "example.so", dir / "example.so");
  {
    Daemon d({.config = config_for(dir)});
    expect_refused(d, dir / "example.so", "/tmp has mode 1777, writable by group or others");
  }
  expect_required_plugin_stops_start(dir, "/tmp has mode 1777");
}

TEST_F(LoadablePlugins, WithoutPluginDirNothingIsLoaded) {
  Daemon d;
  auto ls = d.ctr({"plugins", "ls", "id==example"});
  ASSERT_EQ(ls.exit_code, 0) << ls.all();
  EXPECT_THAT(ls.out, Not(HasSubstr("example")));
  EXPECT_THAT(d.log(), Not(HasSubstr("plugin file")));
}

}  // namespace
}  // namespace ctrd::testing
