// Namespaces, content, leases and events as a user drives them with the real ctr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>

#include <github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h>
#include <google/protobuf/any.pb.h>

#include <fstream>
#include <random>
#include <regex>

#include "harness.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace content_api = containerd::services::content::v1;
namespace ttrpc_events = containerd::services::events::ttrpc::v1;
namespace ns_api = containerd::services::namespaces::v1;

struct Blob {
  std::string data;
  std::string digest;
  std::filesystem::path file;
};

Blob make_blob(const std::filesystem::path& dir, size_t size, unsigned seed) {
  Blob b;
  std::mt19937_64 rng(seed);
  b.data.resize(size);
  for (auto& c : b.data) c = static_cast<char>(rng());
  b.digest = sha256_digest(b.data);
  b.file = dir / ("blob-" + std::to_string(seed));
  std::ofstream(b.file, std::ios::binary) << b.data;
  return b;
}

RunResult ingest(Daemon& d, const std::string& ns, const std::string& ref, const Blob& b,
                 const std::string& expected = "") {
  return run(
      {ctr_binary(), "-a", d.address(), "-n", ns, "content", "ingest", "--expected-size",
       std::to_string(b.data.size()), "--expected-digest", expected.empty() ? b.digest : expected, ref},
      std::chrono::seconds(60), b.file.string());
}

TEST(Namespaces, CreateLabelListRemove) {
  Daemon d(without_gc());
  ASSERT_EQ(d.ctr({"ns", "create", "a"}).exit_code, 0);
  auto dup = d.ctr({"ns", "create", "a"});
  EXPECT_NE(dup.exit_code, 0);
  EXPECT_THAT(dup.all(), HasSubstr("already exists"));
  ASSERT_EQ(d.ctr({"ns", "label", "a", "k=v"}).exit_code, 0);
  auto ls = d.ctr({"ns", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.all();
  EXPECT_TRUE(std::regex_search(ls.out, std::regex("\\ba\\s+k=v"))) << ls.out;
  ASSERT_EQ(d.ctr({"ns", "label", "a", "k="}).exit_code, 0);
  EXPECT_THAT(d.ctr({"ns", "ls"}).out, Not(HasSubstr("k=v")));
  ASSERT_EQ(d.ctr({"ns", "rm", "a"}).exit_code, 0);
  EXPECT_THAT(d.ctr({"ns", "ls", "-q"}).out, Not(HasSubstr("a\n")));
  auto bad = d.ctr({"ns", "create", "bad name!"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.all(), HasSubstr("bad name!"));
}

TEST(Namespaces, SurviveRestart) {
  Daemon d(without_gc());
  ASSERT_EQ(d.ctr({"ns", "create", "keep", "team=infra"}).exit_code, 0);
  ASSERT_EQ(d.stop(), 0);
  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_TRUE(std::regex_search(d.ctr({"ns", "ls"}).out, std::regex("keep\\s+team=infra")));
}

TEST(Namespaces, RemoveWhileHoldingContentFailsClearly) {
  Daemon d(without_gc());
  Blob b = make_blob(d.dir(), 4096, 1);
  ASSERT_EQ(ingest(d, "full", "ref", b).exit_code, 0);
  auto rm = d.ctr({"ns", "rm", "full"});
  EXPECT_NE(rm.exit_code, 0);
  EXPECT_THAT(rm.all(), HasSubstr("must be empty"));
  ASSERT_EQ(d.ctr({"content", "rm", b.digest}, "full").exit_code, 0);
  EXPECT_EQ(d.ctr({"ns", "rm", "full"}).exit_code, 0);
}

TEST(Namespaces, GrpcUpdateWithFieldMaskAndBadPath) {
  Daemon d(without_gc());
  auto stub = ns_api::Namespaces::NewStub(d.channel());
  {
    auto ctx = context_for("");
    ns_api::CreateNamespaceRequest req;
    req.mutable_namespace_()->set_name("m");
    (*req.mutable_namespace_()->mutable_labels())["a"] = "1";
    (*req.mutable_namespace_()->mutable_labels())["b"] = "2";
    ns_api::CreateNamespaceResponse resp;
    ASSERT_TRUE(stub->Create(ctx.get(), req, &resp).ok());
  }
  {
    auto ctx = context_for("");
    ns_api::UpdateNamespaceRequest req;
    req.mutable_namespace_()->set_name("m");
    (*req.mutable_namespace_()->mutable_labels())["b"] = "3";
    req.mutable_update_mask()->add_paths("labels.b");
    ns_api::UpdateNamespaceResponse resp;
    auto s = stub->Update(ctx.get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.namespace_().labels().at("a"), "1");
    EXPECT_EQ(resp.namespace_().labels().at("b"), "3");
  }
  {
    auto ctx = context_for("");
    ns_api::UpdateNamespaceRequest req;
    req.mutable_namespace_()->set_name("m");
    req.mutable_update_mask()->add_paths("name");
    ns_api::UpdateNamespaceResponse resp;
    EXPECT_EQ(stub->Update(ctx.get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST(Content, IngestListGetLabelRemove) {
  Daemon d(without_gc());
  Blob b = make_blob(d.dir(), 3 << 20, 2);
  auto r = ingest(d, "a", "ref1", b);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  auto ls = d.ctr({"content", "ls"}, "a");
  EXPECT_THAT(ls.out, HasSubstr(b.digest));
  auto get = d.ctr({"content", "get", b.digest}, "a");
  ASSERT_EQ(get.exit_code, 0);
  EXPECT_EQ(get.out.size(), b.data.size());
  EXPECT_TRUE(get.out == b.data) << "content get returns the bytes written";
  ASSERT_EQ(d.ctr({"content", "label", b.digest, "team=infra"}, "a").exit_code, 0);
  EXPECT_THAT(d.ctr({"content", "ls"}, "a").out, HasSubstr("team=infra"));
  EXPECT_THAT(d.ctr({"content", "ls", "labels.team==infra"}, "a").out, HasSubstr(b.digest));
  EXPECT_THAT(d.ctr({"content", "ls", "labels.team==other"}, "a").out, Not(HasSubstr(b.digest)));
  ASSERT_EQ(d.ctr({"content", "rm", b.digest}, "a").exit_code, 0);
  EXPECT_THAT(d.ctr({"content", "ls"}, "a").out, Not(HasSubstr(b.digest)));
  auto missing = d.ctr({"content", "get", b.digest}, "a");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.all(), HasSubstr("not found"));
}

TEST(Content, WrongExpectedDigestCommitsNothingAndLeavesIngestActive) {
  Daemon d(without_gc());
  Blob b = make_blob(d.dir(), 1 << 20, 3);
  const std::string wrong = "sha256:" + std::string(64, '0');
  auto r = ingest(d, "a", "bad", b, wrong);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.all(), HasSubstr(wrong));
  EXPECT_THAT(r.all(), HasSubstr(b.digest));
  EXPECT_THAT(d.ctr({"content", "ls"}, "a").out, Not(HasSubstr(b.digest)));
  // Nothing half-written in the blob directory either.
  for (const auto& e : std::filesystem::recursive_directory_iterator(d.root())) {
    EXPECT_THAT(e.path().string(), Not(HasSubstr(b.digest.substr(7)))) << e.path();
  }
  auto active = d.ctr({"content", "active"}, "a");
  EXPECT_THAT(active.out, HasSubstr("bad"));
}

TEST(Content, VisibleOnlyInTheWritingNamespace) {
  Daemon d(without_gc());
  Blob b = make_blob(d.dir(), 8192, 4);
  ASSERT_EQ(ingest(d, "one", "r", b).exit_code, 0);
  EXPECT_THAT(d.ctr({"content", "ls"}, "two").out, Not(HasSubstr(b.digest)));
  EXPECT_NE(d.ctr({"content", "get", b.digest}, "two").exit_code, 0);
  // Given to the second namespace by writing it there too; both see it.
  ASSERT_EQ(ingest(d, "two", "r", b).exit_code, 0);
  EXPECT_THAT(d.ctr({"content", "ls"}, "two").out, HasSubstr(b.digest));
  ASSERT_EQ(d.ctr({"content", "rm", b.digest}, "one").exit_code, 0);
  EXPECT_EQ(d.ctr({"content", "get", b.digest}, "two").out, b.data);
}

TEST(Content, RequestsWithoutNamespaceAreFailedPrecondition) {
  Daemon d(without_gc());
  auto stub = content_api::Content::NewStub(d.channel());
  grpc::ClientContext ctx;
  content_api::InfoRequest req;
  req.set_digest("sha256:" + std::string(64, 'a'));
  content_api::InfoResponse resp;
  EXPECT_EQ(stub->Info(&ctx, req, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto bad_ctx = context_for("a");
  req.set_digest("md5:nope");
  auto s = stub->Info(bad_ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("md5:nope"));
}

TEST(Leases, CreateListRemove) {
  Daemon d(without_gc());
  auto created = d.ctr({"leases", "create", "--id", "mine", "team=infra"}, "a");
  ASSERT_EQ(created.exit_code, 0) << created.all();
  auto ls = d.ctr({"leases", "ls"}, "a");
  EXPECT_THAT(ls.out, HasSubstr("mine"));
  EXPECT_THAT(ls.out, HasSubstr("team=infra"));
  auto gen = d.ctr({"leases", "create"}, "a");
  ASSERT_EQ(gen.exit_code, 0) << gen.all();
  EXPECT_TRUE(std::regex_search(gen.out, std::regex("^\\d+-[A-Za-z0-9_-]+")));
  ASSERT_EQ(d.ctr({"leases", "rm", "mine"}, "a").exit_code, 0);
  EXPECT_THAT(d.ctr({"leases", "ls"}, "a").out, Not(HasSubstr("mine")));
  auto again = d.ctr({"leases", "rm", "mine"}, "a");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.all(), HasSubstr("not found"));
}

TEST(Events, CtrEventsPrintsNamespaceAndContentEvents) {
  Daemon d(without_gc());
  Process events({ctr_binary(), "-a", d.address(), "events"}, (d.dir() / "events.out").string());
  auto output = [&] {
    std::ifstream in(d.dir() / "events.out");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  // ctr subscribes asynchronously: act until the subscriber has seen an action (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int i = 0;
  while (output().find("/namespaces/create") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(d.ctr({"ns", "create", "probe" + std::to_string(i++)}).exit_code, 0);
  }
  ASSERT_THAT(output(), HasSubstr("/namespaces/create"));
  Blob b = make_blob(d.dir(), 1024, 5);
  ASSERT_EQ(ingest(d, "ev", "r", b).exit_code, 0);
  ASSERT_EQ(d.ctr({"content", "rm", b.digest}, "ev").exit_code, 0);
  ASSERT_EQ(d.ctr({"ns", "rm", "probe0"}).exit_code, 0);
  wait_for_content(d.dir() / "events.out", {"/namespaces/delete", "/content/delete"});
  EXPECT_THAT(output(), HasSubstr("/content/delete"));
  EXPECT_THAT(output(), HasSubstr("/namespaces/delete"));
  EXPECT_THAT(output(), HasSubstr(b.digest));
}

TEST(Events, CtrdPublishForwardsAnEventFromStdin) {
  Daemon d(without_gc());
  Process events({ctr_binary(), "-a", d.address(), "events"}, (d.dir() / "events.out").string());
  // What a shim hands its -publish-binary: a serialized google.protobuf.Any.
  google::protobuf::Any event;
  event.set_type_url("containerd.events.NamespaceCreate");
  event.set_value(std::string("\x0a\x05hello", 7));  // field 1 (name) = "hello"
  std::ofstream(d.dir() / "event.bin", std::ios::binary) << event.SerializeAsString();
  auto publish = [&] {
    return run({ctrd_binary(), "--address", d.address(), "publish", "--namespace", "pub", "--topic",
                "/test/published"},
               std::chrono::seconds(30), (d.dir() / "event.bin").string());
  };
  // ctr subscribes asynchronously: publish until the subscriber has seen one (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string seen;
  while (seen.find("/test/published") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto r = publish();
    ASSERT_EQ(r.exit_code, 0) << r.all();
    std::ifstream in(d.dir() / "events.out");
    seen.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  EXPECT_THAT(seen, HasSubstr("/test/published"));
  EXPECT_THAT(seen, HasSubstr("pub"));
  auto no_topic = run({ctrd_binary(), "--address", d.address(), "publish", "--namespace", "pub"},
                      std::chrono::seconds(30), (d.dir() / "event.bin").string());
  EXPECT_NE(no_topic.exit_code, 0);
  EXPECT_THAT(no_topic.all(), HasSubstr("topic required"));
}

TEST(Events, ShimsForwardOverTtrpc) {
  Daemon d(without_gc());
  Process events({ctr_binary(), "-a", d.address(), "events"}, (d.dir() / "events.out").string());
  // What containerd-shim-runc-v2 does with TTRPC_ADDRESS: Events/Forward on the ttRPC socket.
  auto client = ttrpc::Client::connect(d.address() + ".ttrpc");
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  ttrpc_events::ForwardRequest req;
  auto* envelope = req.mutable_envelope();
  envelope->set_namespace_("shimns");
  envelope->set_topic("/tasks/exit");
  envelope->mutable_event()->set_type_url("containerd.events.TaskExit");
  envelope->mutable_event()->set_value(std::string("\x0a\x02t1", 4));  // container_id = "t1"
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string seen;
  while (seen.find("/tasks/exit") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto forwarded =
        (*client)->call("containerd.services.events.ttrpc.v1.Events", "Forward", req.SerializeAsString());
    ASSERT_TRUE(forwarded.ok()) << forwarded.status().to_string();
    std::ifstream in(d.dir() / "events.out");
    seen.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  EXPECT_THAT(seen, HasSubstr("/tasks/exit"));
  EXPECT_THAT(seen, HasSubstr("shimns"));
  auto unknown = (*client)->call("containerd.services.events.ttrpc.v1.Events", "Nope", "");
  EXPECT_EQ(unknown.status().code(), errdefs::Code::kNotImplemented) << unknown.status().to_string();
  auto garbage = (*client)->call("containerd.services.events.ttrpc.v1.Events", "Forward", "\xff\xff");
  EXPECT_FALSE(garbage.ok());
  EXPECT_EQ(d.ctr({"version"}).exit_code, 0);
}

}  // namespace
}  // namespace ctrd::testing
