// CNI plugins from Debian's containernetworking-plugins on a network
// namespace bound to a file: a bridge this test creates, a private subnet,
// no gateway and no route out.
#include "cni/cni.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "os/netns.h"
#include "os/process.h"
#include "support/temp_dir.h"

namespace ctrd::cni {
namespace {

using ctrd::testing::TempDir;

constexpr std::string_view kPluginDir = "/usr/lib/cni";

std::string ip(const std::vector<std::string>& args, const std::string& netns = "") {
  std::vector<std::string> argv;
  if (!netns.empty()) argv = {"nsenter", "--net=" + netns};
  argv.push_back("ip");
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = os::run(argv);
  return result.ok() ? result->out + result->err : "";
}

// A bridge that exists for the test's lifetime.
class Bridge {
 public:
  explicit Bridge(std::string name) : name_(std::move(name)) {
    ip({"link", "del", name_});
    ip({"link", "add", name_, "type", "bridge"});
    ip({"link", "set", name_, "up"});
  }
  ~Bridge() { ip({"link", "del", name_}); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || ::access((std::string(kPluginDir) + "/bridge").c_str(), X_OK) != 0)
      GTEST_SKIP() << "needs root and containernetworking-plugins";
  }

  std::string conflist(const std::string& bridge) const {
    nlohmann::json list{
        {"cniVersion", "0.4.0"},
        {"name", "ctrd-test"},
        {"plugins",
         {{{"type", "bridge"},
           {"bridge", bridge},
           {"isGateway", false},
           {"ipMasq", false},
           {"ipam",
            {{"type", "host-local"},
             {"ranges", {{{{"subnet", "10.237.0.0/24"}}}}},
             {"dataDir", dir_.sub("ipam")}}}},
          {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", false}}}}};
    return list.dump();
  }

  TempDir dir_;
};

TEST_F(CniTest, AddGivesThePodAnAddressOnTheBridgeAndDelTakesItBack) {
  Bridge bridge("ctrdcnit0");
  auto netns = os::NetNs::create(dir_.sub("netns/pod"));
  ASSERT_TRUE(netns.ok()) << netns.status().to_string();
  EXPECT_TRUE(netns->bound());
  EXPECT_EQ(os::NetNs::create(netns->path()).status().code(), errdefs::Code::kAlreadyExists);

  Attachment attachment{
      .container_id = "pod1",
      .netns = netns->path(),
      .ifname = "eth0",
      .args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "p"}},
      .capability_args = {}};
  const Options options{.bin_dirs = {std::string(kPluginDir)}};
  auto added = add(conflist(bridge.name()), attachment, options);
  ASSERT_TRUE(added.ok()) << added.status().to_string();
  const auto addresses = added->addresses_of("eth0");
  ASSERT_EQ(addresses.size(), 1u) << added->json;
  EXPECT_TRUE(addresses[0].starts_with("10.237.0.")) << addresses[0];
  EXPECT_NE(ip({"-o", "addr", "show", "dev", "eth0"}, netns->path()).find(addresses[0]), std::string::npos);
  // Only inside the pod's namespace.
  EXPECT_EQ(ip({"-o", "addr", "show", "dev", "eth0"}).find(addresses[0]), std::string::npos);

  ASSERT_TRUE(del(conflist(bridge.name()), attachment, added->json, options).ok());
  EXPECT_EQ(ip({"-o", "addr", "show", "dev", "eth0"}, netns->path()).find(addresses[0]), std::string::npos);
  // DEL twice is fine: plugins treat a missing attachment as done.
  EXPECT_TRUE(del(conflist(bridge.name()), attachment, added->json, options).ok());

  ASSERT_TRUE(netns->remove().ok());
  EXPECT_FALSE(netns->bound());
  EXPECT_TRUE(netns->remove().ok());
}

TEST_F(CniTest, APluginsErrorComesBackWithItsMessage) {
  Bridge bridge("ctrdcnit1");
  auto netns = os::NetNs::create(dir_.sub("netns/broken"));
  ASSERT_TRUE(netns.ok());
  Attachment attachment{.container_id = "pod2", .netns = netns->path()};
  // host-local without a range fails, saying why.
  const std::string bad =
      R"({"cniVersion":"0.4.0","name":"bad","plugins":[{"type":"bridge","bridge":"ctrdcnit1","ipam":{"type":"host-local"}}]})";
  auto added = add(bad, attachment, Options{.bin_dirs = {std::string(kPluginDir)}});
  ASSERT_FALSE(added.ok());
  EXPECT_NE(added.status().message().find("plugin bridge failed (ADD"), std::string::npos)
      << added.status().message();
  EXPECT_EQ(add(R"({"name":"x","plugins":[{"type":"nonexistent"}]})", attachment,
                Options{.bin_dirs = {std::string(kPluginDir)}})
                .status()
                .code(),
            errdefs::Code::kNotFound);
  EXPECT_EQ(add("{", attachment, {}).status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_TRUE(netns->remove().ok());
}

}  // namespace
}  // namespace ctrd::cni
