#include "plugin/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "plugin/abi.h"

namespace ctrd::plugin {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
  ASSERT_TRUE(out.good()) << p;
}

// A fresh directory for plugin files and the test plugins' markers, removed
// afterwards whatever happens.
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Not /tmp: plugin files are loaded only from places only root can write to.
    std::string tmpl = "/run/ctrd-loader-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs::create_directories(markers());
    ::setenv("CTRD_TEST_PLUGIN_MARKER_DIR", markers().c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("CTRD_TEST_PLUGIN_MARKER_DIR");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path markers() const { return dir_ / "markers"; }
  // Whether the test plugin `id`'s static constructor ran.
  bool constructor_ran(const std::string& id) const { return fs::exists(markers() / id); }
  // A copy of a test plugin under a new name: a file dlopen has not seen.
  fs::path copy(const std::string& from, const std::string& name) {
    fs::path to = dir_ / name;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    return to;
  }

  fs::path dir_;
};

TEST_F(LoaderTest, DaemonStampNamesEverythingTheAbiDependsOn) {
  const std::string stamp(daemon_abi_stamp());
  EXPECT_THAT(stamp, AllOf(HasSubstr("ctrd-plugin-abi/1;"), HasSubstr(";ctrd=" CTRD_PLUGIN_CTRD_VERSION),
                           HasSubstr(";api=" CTRD_PLUGIN_API_HASH), HasSubstr(";cxx=gcc-"),
                           HasSubstr(";stdlib=libstdc++-"), HasSubstr(";std=202002L")));
  EXPECT_EQ(std::string(CTRD_PLUGIN_API_HASH).size(), 16u);
}

TEST_F(LoaderTest, ReadsTheStampFromTheElfFile) {
  auto good = read_abi_stamp(CTRD_TEST_PLUGIN_good);
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_EQ(*good, daemon_abi_stamp());
  auto bad = read_abi_stamp(CTRD_TEST_PLUGIN_bad_stamp);
  ASSERT_TRUE(bad.ok()) << bad.status().message();
  EXPECT_EQ(*bad, "bogus-stamp");
  // Reading the stamp runs nothing.
  EXPECT_FALSE(constructor_ran("bad_stamp"));
}

TEST_F(LoaderTest, ReadStampRejectsWhatIsNotAPluginWithoutCrashing) {
  const fs::path text = dir_ / "x.so";
  write_file(text, "#!/bin/sh\necho not a plugin\n");
  auto s = read_abi_stamp(text.string());
  EXPECT_EQ(s.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_THAT(s.status().message(), AllOf(HasSubstr(text.string()), HasSubstr("not an ELF file")));

  const fs::path truncated = dir_ / "truncated.so";
  write_file(truncated, read_file(CTRD_TEST_PLUGIN_good).substr(0, 200));
  s = read_abi_stamp(truncated.string());
  EXPECT_EQ(s.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("truncated"));

  s = read_abi_stamp(CTRD_TEST_PLUGIN_no_stamp);
  EXPECT_EQ(s.status().code(), errdefs::Code::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("no ctrd ABI stamp"));

  s = read_abi_stamp((dir_ / "missing.so").string());
  EXPECT_EQ(s.status().code(), errdefs::Code::kNotFound);
}

TEST_F(LoaderTest, LoadsAGoodPluginIntoTheRegistryAndItsInitAnswers) {
  Registry registry;
  LoadedFile f = load_plugin_file(copy(CTRD_TEST_PLUGIN_good, "good.so"), registry);
  ASSERT_TRUE(f.status.ok()) << f.status.message();
  EXPECT_EQ(f.registered, std::vector<std::string>{"io.containerd.internal.v1.good"});
  EXPECT_TRUE(constructor_ran("good"));
  ASSERT_EQ(registry.registrations().size(), 1u);

  // The plugin's init runs across the boundary: Instance, Meta and std types.
  const Registration& r = *registry.registrations().front();
  InitContext ic(r, {.root = dir_.string(), .state = dir_.string()}, nullptr, std::make_shared<Set>());
  auto instance = r.init(ic);
  ASSERT_TRUE(instance.ok()) << instance.status().message();
  EXPECT_FALSE(instance->empty());
  EXPECT_EQ(ic.meta().exports["greeting"], "hello from good");
  EXPECT_THAT(instance->type_name(), HasSubstr("Greeter"));
}

TEST_F(LoaderTest, RefusesAMismatchedStampNamingFileAndBothStampsWithoutRunningIt) {
  Registry registry;
  const fs::path path = copy(CTRD_TEST_PLUGIN_bad_stamp, "bad.so");
  LoadedFile f = load_plugin_file(path, registry);
  EXPECT_EQ(f.status.code(), errdefs::Code::kFailedPrecondition);
  EXPECT_THAT(f.status.message(),
              AllOf(HasSubstr(path.string()), HasSubstr("ABI stamp mismatch"),
                    HasSubstr("plugin has \"bogus-stamp\""),
                    HasSubstr("ctrd expects \"" + std::string(daemon_abi_stamp()) + "\"")));
  EXPECT_TRUE(registry.registrations().empty());
  EXPECT_FALSE(constructor_ran("bad_stamp")) << "the refused plugin's static constructor ran";
}

TEST_F(LoaderTest, RefusesACopyWhoseStampBytesWerePatched) {
  std::string bytes = read_file(CTRD_TEST_PLUGIN_good);
  const std::string stamp(daemon_abi_stamp());
  const size_t at = bytes.find(stamp);
  ASSERT_NE(at, std::string::npos);
  const size_t api = at + stamp.find(";api=") + 5;
  bytes[api] = bytes[api] == '0' ? '1' : '0';
  const fs::path path = dir_ / "patched.so";
  write_file(path, bytes);

  Registry registry;
  LoadedFile f = load_plugin_file(path, registry);
  EXPECT_THAT(f.status.message(),
              AllOf(HasSubstr(path.string()), HasSubstr("ABI stamp mismatch"),
                    HasSubstr("\"" + bytes.substr(at, stamp.size()) + "\""), HasSubstr("\"" + stamp + "\"")));
  EXPECT_TRUE(registry.registrations().empty());
  EXPECT_FALSE(constructor_ran("good"));
}

TEST_F(LoaderTest, RefusesAPluginWithoutEntryPoint) {
  Registry registry;
  const fs::path path = copy(CTRD_TEST_PLUGIN_no_entry, "no_entry.so");
  LoadedFile f = load_plugin_file(path, registry);
  EXPECT_THAT(f.status.message(),
              AllOf(HasSubstr(path.string()), HasSubstr("no entry point ctrd_register_plugins")));
  EXPECT_TRUE(registry.registrations().empty());
}

TEST_F(LoaderTest, RefusesAPluginWithoutStampNamingTheExpectedOne) {
  Registry registry;
  const fs::path path = copy(CTRD_TEST_PLUGIN_no_stamp, "no_stamp.so");
  LoadedFile f = load_plugin_file(path, registry);
  EXPECT_THAT(f.status.message(), AllOf(HasSubstr(path.string()), HasSubstr("no ctrd ABI stamp"),
                                        HasSubstr("\"" + std::string(daemon_abi_stamp()) + "\"")));
  EXPECT_FALSE(constructor_ran("no_stamp"));
  EXPECT_TRUE(registry.registrations().empty());
}

TEST_F(LoaderTest, RefusesRegistrationsThatCollideOrAreInvalidAndAddsNothing) {
  Registry registry;
  ASSERT_TRUE(load_plugin_file(copy(CTRD_TEST_PLUGIN_good, "good.so"), registry).status.ok());

  LoadedFile dup = load_plugin_file(copy(CTRD_TEST_PLUGIN_duplicate, "dup.so"), registry);
  EXPECT_THAT(dup.status.message(),
              AllOf(HasSubstr("dup.so"), HasSubstr("io.containerd.internal.v1.good is already registered")));
  LoadedFile invalid = load_plugin_file(copy(CTRD_TEST_PLUGIN_invalid, "invalid.so"), registry);
  EXPECT_EQ(invalid.status.code(), errdefs::Code::kFailedPrecondition);
  EXPECT_THAT(invalid.status.message(), HasSubstr("invalid.so"));
  EXPECT_EQ(registry.registrations().size(), 1u);
  EXPECT_TRUE(registry.rejected().empty()) << "a refused file must not stop the daemon";
}

TEST_F(LoaderTest, LoadsEverySharedObjectOfADirectoryInNameOrder) {
  const fs::path plugins = dir_ / "plugins";
  fs::create_directories(plugins / "dir.so");
  fs::copy_file(CTRD_TEST_PLUGIN_good, plugins / "b-good.so");
  fs::copy_file(CTRD_TEST_PLUGIN_bad_stamp, plugins / "a-bad.so");
  write_file(plugins / "x.so", "not an ELF file");
  write_file(plugins / "notes.txt", "ignored");

  Registry registry;
  auto files = load_plugin_dir(plugins.string(), registry);
  ASSERT_TRUE(files.ok()) << files.status().message();
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].path, (plugins / "a-bad.so").string());
  EXPECT_THAT((*files)[0].status.message(), HasSubstr("ABI stamp mismatch"));
  EXPECT_EQ((*files)[1].path, (plugins / "b-good.so").string());
  EXPECT_TRUE((*files)[1].status.ok()) << (*files)[1].status.message();
  EXPECT_EQ((*files)[2].path, (plugins / "x.so").string());
  EXPECT_THAT((*files)[2].status.message(),
              AllOf(HasSubstr((plugins / "x.so").string()), HasSubstr("not an ELF")));
  ASSERT_EQ(registry.registrations().size(), 1u);
  EXPECT_EQ(registry.registrations().front()->uri(), "io.containerd.internal.v1.good");
  EXPECT_FALSE(constructor_ran("bad_stamp"));
}

TEST_F(LoaderTest, AMissingOrUnsetPluginDirLoadsNothing) {
  Registry registry;
  auto missing = load_plugin_dir((dir_ / "nope").string(), registry);
  ASSERT_TRUE(missing.ok()) << missing.status().message();
  EXPECT_TRUE(missing->empty());
  auto unset = load_plugin_dir("", registry);
  ASSERT_TRUE(unset.ok());
  EXPECT_TRUE(unset->empty());
}

}  // namespace
}  // namespace ctrd::plugin
