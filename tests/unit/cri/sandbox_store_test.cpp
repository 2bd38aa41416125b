#include "cri/sandbox_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ctrd::cri {
namespace {

::runtime::v1::PodSandboxConfig pod_config(const std::string& name) {
  ::runtime::v1::PodSandboxConfig config;
  config.mutable_metadata()->set_name(name);
  config.mutable_metadata()->set_namespace_("default");
  config.mutable_metadata()->set_uid("uid-" + name);
  config.mutable_metadata()->set_attempt(2);
  config.set_hostname(name);
  (*config.mutable_labels())["app"] = "web";
  auto* port = config.add_port_mappings();
  port->set_container_port(80);
  port->set_host_port(8080);
  return config;
}

Sandbox sandbox(const std::string& id) {
  Sandbox s;
  s.metadata.id = id;
  s.metadata.config = pod_config("p-" + id);
  s.metadata.name = sandbox_name(s.metadata.config.metadata());
  s.state = SandboxState::kReady;
  return s;
}

TEST(SandboxStore, NamesAreTheKubeletsAndReservedOnce) {
  EXPECT_EQ(sandbox_name(pod_config("web").metadata()), "k8s_POD_web_default_uid-web_2");
  NameIndex names;
  ASSERT_TRUE(names.reserve("k8s_POD_a", "id1").ok());
  EXPECT_TRUE(names.reserve("k8s_POD_a", "id1").ok());
  auto taken = names.reserve("k8s_POD_a", "id2");
  EXPECT_EQ(taken.code(), errdefs::Code::kAlreadyExists);
  EXPECT_NE(taken.message().find("id1"), std::string::npos);
  names.release("k8s_POD_a");
  EXPECT_TRUE(names.reserve("k8s_POD_a", "id2").ok());
  EXPECT_EQ(names.holder("k8s_POD_a"), "id2");
}

TEST(SandboxStore, MetadataRoundTripsThroughItsJson) {
  SandboxMetadata m = sandbox("abc").metadata;
  m.netns_path = "/run/ctrd/netns/cni-1";
  m.ip = "10.88.0.4";
  m.additional_ips = {"fd00::4"};
  m.runtime_handler = "runc";
  m.cni_result = R"({"ips":[]})";
  auto encoded = encode_metadata(m);
  ASSERT_TRUE(encoded.ok());
  auto decoded = decode_metadata(*encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->id, "abc");
  EXPECT_EQ(decoded->name, m.name);
  EXPECT_EQ(decoded->netns_path, m.netns_path);
  EXPECT_EQ(decoded->ip, m.ip);
  EXPECT_EQ(decoded->additional_ips, m.additional_ips);
  EXPECT_EQ(decoded->runtime_handler, "runc");
  EXPECT_EQ(decoded->cni_result, m.cni_result);
  EXPECT_EQ(decoded->config.SerializeAsString(), m.config.SerializeAsString());

  EXPECT_EQ(decode_metadata("{").status().code(), errdefs::Code::kDataLoss);
  EXPECT_EQ(decode_metadata(R"({"Version":"v9","Metadata":{"ID":"x"}})").status().code(),
            errdefs::Code::kDataLoss);
  EXPECT_EQ(decode_metadata(R"({"Version":"v1","Metadata":{"ID":""}})").status().code(),
            errdefs::Code::kDataLoss);
  EXPECT_EQ(
      decode_metadata(R"({"Version":"v1","Metadata":{"ID":"x","Config":{"metadata":7}}})").status().code(),
      errdefs::Code::kDataLoss);
}

TEST(SandboxStore, LooksUpByIdOrUniquePrefix) {
  SandboxStore store;
  ASSERT_TRUE(store.add(sandbox("abc123")).ok());
  ASSERT_TRUE(store.add(sandbox("abd456")).ok());
  EXPECT_EQ(store.add(sandbox("abc123")).code(), errdefs::Code::kAlreadyExists);
  EXPECT_EQ(store.get("abc123")->metadata.id, "abc123");
  EXPECT_EQ(store.get("abc")->metadata.id, "abc123");
  EXPECT_EQ(store.get("abd")->metadata.id, "abd456");
  EXPECT_EQ(store.get("ab").status().code(), errdefs::Code::kNotFound);  // ambiguous
  EXPECT_NE(store.get("ab").status().message().find("ambiguous"), std::string::npos);
  EXPECT_EQ(store.get("zz").status().code(), errdefs::Code::kNotFound);
  EXPECT_EQ(store.get("").status().code(), errdefs::Code::kNotFound);

  ASSERT_TRUE(store.update("abc123", SandboxState::kNotReady, 42).ok());
  EXPECT_EQ(store.get("abc123")->state, SandboxState::kNotReady);
  EXPECT_EQ(store.get("abc123")->pid, 42u);
  EXPECT_EQ(store.update("nope", SandboxState::kReady, 0).code(), errdefs::Code::kNotFound);
  store.remove("abc123");
  EXPECT_EQ(store.list().size(), 1u);
  EXPECT_EQ(store.get("ab")->metadata.id, "abd456");
}

TEST(SandboxStore, ConcurrentAddsOfOneIdLetExactlyOneWin) {
  SandboxStore store;
  std::atomic<int> won = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (store.add(sandbox("same")).ok()) ++won;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
}

}  // namespace
}  // namespace ctrd::cri
