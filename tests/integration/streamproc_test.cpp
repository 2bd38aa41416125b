// Stream processors from the config: an image whose layer only a configured
// processor can decode (base64 with a custom media type) imports and runs; a
// processor that fails makes the import fail with a message naming it, and
// leaves no committed snapshot, mount or process behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

constexpr std::string_view kBase64Type = "application/vnd.example.layer.v1.tar+base64";
constexpr std::string_view kFalseType = "application/vnd.example.layer.v1.tar+false";
constexpr std::string_view kNoisyType = "application/vnd.example.layer.v1.tar+noisy";

// Processes whose executable is `path` and whose parent is `parent`.
std::vector<std::string> children_running(pid_t parent, const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc", ec); it != fs::directory_iterator(); it.increment(ec)) {
    const std::string stat = read_text(it->path() / "stat");
    const auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::error_code link_ec;
    if (fs::read_symlink(it->path() / "exe", link_ec).string() == path) out.push_back(it->path().filename());
  }
  return out;
}

// An uncompressed busybox image rewritten so its layer has `media_type`.
fs::path processed_image(const fs::path& dir, std::string_view media_type, const std::string& name) {
  const fs::path plain = dir / "busybox-plain.tar";
  if (!fs::exists(plain)) {
    auto made = run({"/usr/bin/python3", CTRD_MKIMAGE_PATH, "--busybox", "--format", "oci", "--compression",
                     "none", plain.string()},
                    std::chrono::seconds(300));
    EXPECT_EQ(made.exit_code, 0) << made.all();
  }
  const fs::path out = dir / (name.substr(name.rfind(':') + 1) + ".tar");
  auto rewritten = run({"/usr/bin/python3", CTRD_STREAMIMAGE_PATH, plain.string(), out.string(),
                        std::string(media_type), name});
  EXPECT_EQ(rewritten.exit_code, 0) << rewritten.all();
  return out;
}

class StreamProcessors : public ::testing::Test {
 protected:
  StreamProcessors() : d_(options()) {}

  static DaemonOptions options() {
    DaemonOptions o;
    o.config =
        "version = 2\n"
        "[stream_processors.\"com.example.base64\"]\n"
        "  accepts = [\"" +
        std::string(kBase64Type) +
        "\"]\n"
        "  returns = \"application/vnd.oci.image.layer.v1.tar\"\n"
        "  path = \"/usr/bin/base64\"\n"
        "  args = [\"-d\"]\n"
        "[stream_processors.\"com.example.false\"]\n"
        "  accepts = [\"" +
        std::string(kFalseType) +
        "\"]\n"
        "  returns = \"application/vnd.oci.image.layer.v1.tar\"\n"
        "  path = \"/bin/false\"\n"
        "[stream_processors.\"com.example.noisy\"]\n"
        "  accepts = [\"" +
        std::string(kNoisyType) +
        "\"]\n"
        "  returns = \"application/vnd.oci.image.layer.v1.tar\"\n"
        "  path = \"/bin/sh\"\n"
        "  args = [\"-c\", \"echo \\\"no key for $STREAM_PROCESSOR_MEDIATYPE\\\" >&2; exit 7\"]\n";
    return o;
  }

  // After a failed import: nothing committed, nothing mounted, no processor left.
  void expect_nothing_left(const std::string& processor_path) {
    auto ls = d_.ctr({"snapshots", "ls"});
    EXPECT_EQ(ls.exit_code, 0) << ls.all();
    EXPECT_THAT(ls.out, Not(HasSubstr("Committed"))) << ls.out;
    EXPECT_THAT(mounts_below(d_.dir()), ::testing::IsEmpty());
    EXPECT_THAT(children_running(d_.process().pid(), processor_path), ::testing::IsEmpty());
    EXPECT_EQ(d_.ctr({"version"}).exit_code, 0) << "daemon still serving";
  }

  Daemon d_;
};

TEST_F(StreamProcessors, ImportsAndRunsImageDecodedByProcessor) {
  const std::string image = "docker.io/library/b64:latest";
  auto tar = processed_image(d_.dir(), kBase64Type, image);
  auto imported = d_.ctr({"images", "import", tar.string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.all() << "\n" << read_text(d_.log());

  auto check = d_.ctr({"images", "check"});
  EXPECT_THAT(check.out, HasSubstr(image));
  auto ls = d_.ctr({"snapshots", "ls"});
  EXPECT_THAT(ls.out, HasSubstr("Committed")) << ls.out;

  auto hi = d_.ctr({"run", "--rm", image, "streamproc-t1", "echo", "hi"});
  if (hi.exit_code != 0) {  // leave nothing behind for the daemon's teardown
    d_.ctr({"tasks", "kill", "-s", "SIGKILL", "streamproc-t1"});
    d_.ctr({"containers", "rm", "streamproc-t1"});
  }
  EXPECT_EQ(hi.exit_code, 0) << hi.all();
  EXPECT_EQ(hi.out, "hi\n");
}

TEST_F(StreamProcessors, FailingProcessorFailsImportCleanly) {
  auto tar = processed_image(d_.dir(), kFalseType, "docker.io/library/false:latest");
  auto imported = d_.ctr({"images", "import", tar.string()});
  EXPECT_NE(imported.exit_code, 0) << imported.all();
  EXPECT_THAT(imported.all(), HasSubstr("com.example.false"));
  EXPECT_THAT(imported.all(), HasSubstr("exit status 1"));
  expect_nothing_left("/bin/false");
}

TEST_F(StreamProcessors, ProcessorStderrExplainsFailure) {
  auto tar = processed_image(d_.dir(), kNoisyType, "docker.io/library/noisy:latest");
  auto imported = d_.ctr({"images", "import", tar.string()});
  EXPECT_NE(imported.exit_code, 0) << imported.all();
  EXPECT_THAT(imported.all(), HasSubstr("com.example.noisy"));
  EXPECT_THAT(imported.all(), HasSubstr("exit status 7: no key for " + std::string(kNoisyType)));
  expect_nothing_left("/bin/sh");
}

}  // namespace
}  // namespace ctrd::testing
