// The proxy snapshotter against the snapshots front end on a temp socket,
// over a native snapshotter: the whole API and its error codes, end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "fixture.h"
#include "proxy/snapshotter.h"
#include "snapshots/native/native.h"

namespace ctrd::proxy {
namespace {

using errdefs::Code;
using snapshots::Info;
using snapshots::Kind;
using snapshots::Snapshotter;
using testing::Served;
using testing::TempDir;

class ProxySnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto native = snapshots::native::NativeSnapshotter::open(dir_.str() + "/root");
    ASSERT_TRUE(native.ok()) << native.status().message();
    served_ = std::make_unique<Served<Snapshotter>>(*native, &snapshots_service, socket());
    ASSERT_TRUE(served_->start().ok());
    conn_ = std::make_shared<Connection>("extsnap", socket());
    client_ = new_snapshotter(conn_, "extsnap");
  }

  std::string socket() const { return dir_.str() + "/snapshotter.sock"; }

  std::vector<Info> list(const std::vector<std::string>& filters = {}) {
    std::vector<Info> out;
    auto s = client_->walk(
        [&](const Info& i) {
          out.push_back(i);
          return errdefs::Status::Ok();
        },
        filters);
    EXPECT_TRUE(s.ok()) << s.message();
    return out;
  }

  TempDir dir_;  // first: removed last
  std::unique_ptr<Served<Snapshotter>> served_;
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<Snapshotter> client_;
};

TEST_F(ProxySnapshotterTest, PrepareCommitViewMountsRemove) {
  auto mounts = client_->prepare("layer-1", "", {{"app", "one"}});
  ASSERT_TRUE(mounts.ok()) << mounts.status().message();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].type, "bind");
  // Native's bind source is the snapshot's directory itself.
  std::ofstream((*mounts)[0].source + "/hello.txt") << "hello";

  auto again = client_->mounts("layer-1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].source, (*mounts)[0].source);

  auto active = client_->stat("layer-1");
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->kind, Kind::kActive);
  EXPECT_EQ(active->labels.at("app"), "one");

  ASSERT_TRUE(client_->commit("base", "layer-1", {{"app", "base"}}).ok());
  EXPECT_EQ(client_->stat("layer-1").status().code(), Code::kNotFound);
  auto base = client_->stat("base");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->kind, Kind::kCommitted);
  EXPECT_EQ(base->name, "base");
  EXPECT_EQ(base->labels.at("app"), "base");

  auto usage = client_->usage("base");
  ASSERT_TRUE(usage.ok()) << usage.status().message();
  EXPECT_GE(usage->size, 5);
  EXPECT_GE(usage->inodes, 1);

  auto view = client_->view("v", "base", {});
  ASSERT_TRUE(view.ok()) << view.status().message();
  ASSERT_EQ(view->size(), 1u);
  const auto& opts = (*view)[0].options;
  EXPECT_NE(std::find(opts.begin(), opts.end(), "ro"), opts.end());
  EXPECT_TRUE(std::filesystem::exists((*view)[0].source + "/hello.txt"));
  auto v = client_->stat("v");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, Kind::kView);
  EXPECT_EQ(v->parent, "base");

  auto all = list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "base");
  EXPECT_EQ(all[1].name, "v");
  auto views = list({"kind==view"});
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].name, "v");

  EXPECT_EQ(client_->remove("base").code(), Code::kFailedPrecondition);  // "v" is its child
  ASSERT_TRUE(client_->remove("v").ok());
  ASSERT_TRUE(client_->remove("base").ok());
  EXPECT_TRUE(list().empty());
  EXPECT_TRUE(client_->cleanup().ok());
}

TEST_F(ProxySnapshotterTest, UpdateLabels) {
  ASSERT_TRUE(client_->prepare("a", "", {{"keep", "1"}, {"drop", "2"}}).ok());
  Info in;
  in.name = "a";
  in.labels = {{"keep", "1"}, {"new", "3"}};
  auto out = client_->update(in, {});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->labels, (snapshots::Labels{{"keep", "1"}, {"new", "3"}}));
  in.labels = {{"only", "x"}};
  out = client_->update(in, {"labels.only"});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->labels.at("only"), "x");
  EXPECT_EQ(out->labels.at("keep"), "1");
}

TEST_F(ProxySnapshotterTest, ErrorsKeepTheirCodes) {
  ASSERT_TRUE(client_->prepare("a", "", {}).ok());
  EXPECT_EQ(client_->prepare("a", "", {}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(client_->stat("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(client_->prepare("b", "missing", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(client_->commit("c", "missing", {}).code(), Code::kNotFound);
  EXPECT_EQ(client_->remove("missing").code(), Code::kNotFound);
  ASSERT_TRUE(client_->commit("c", "a", {}).ok());
  EXPECT_EQ(client_->mounts("c").status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(client_->prepare("d", "", {}).ok());
  EXPECT_EQ(client_->commit("c", "d", {}).code(), Code::kAlreadyExists);
}

TEST_F(ProxySnapshotterTest, WalkStopsAtTheCallersError) {
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(client_->prepare("k" + std::to_string(1000 + i), "", {}).ok());
  EXPECT_EQ(list().size(), 150u);  // more than one List batch
  int seen = 0;
  auto s = client_->walk(
      [&](const Info&) { return ++seen == 3 ? errdefs::Aborted("enough") : errdefs::Status::Ok(); }, {});
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(seen, 3);
  EXPECT_TRUE(client_->stat("k1000").ok());  // the channel is still usable
}

TEST_F(ProxySnapshotterTest, UnavailableWhileTheServerIsDownThenBack) {
  ASSERT_TRUE(client_->prepare("a", "", {}).ok());
  served_->stop();
  auto down = client_->stat("a");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Code::kUnavailable);
  EXPECT_NE(down.status().message().find(socket()), std::string::npos) << down.status().message();
  EXPECT_NE(down.status().message().find("extsnap"), std::string::npos);
  EXPECT_EQ(client_->prepare("b", "", {}).status().code(), Code::kUnavailable);

  ASSERT_TRUE(served_->start().ok());
  testing::await_reconnect(*conn_);
  auto back = client_->stat("a");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->kind, Kind::kActive);
}

TEST_F(ProxySnapshotterTest, NothingListeningIsUnavailableNotAHang) {
  auto conn = std::make_shared<Connection>("nobody", "unix://" + dir_.str() + "/absent.sock");
  EXPECT_EQ(conn->address(), dir_.str() + "/absent.sock");
  auto client = new_snapshotter(conn, "nobody");
  const auto start = std::chrono::steady_clock::now();
  auto s = client->stat("x");
  EXPECT_EQ(s.status().code(), Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace ctrd::proxy
