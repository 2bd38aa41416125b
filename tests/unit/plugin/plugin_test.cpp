#include <gtest/gtest.h>

#include <algorithm>

#include "plugin/plugin.h"
#include "test_registrations.h"

namespace ctrd::plugin {
namespace {

using errdefs::Code;

std::vector<std::string> uris(const std::vector<GraphNode>& g) {
  std::vector<std::string> out;
  for (const auto& n : g) out.push_back(n.registration->uri());
  return out;
}

size_t index_of(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

TEST(Types, MatchContainerdStrings) {
  EXPECT_EQ(type::kContent, "io.containerd.content.v1");
  EXPECT_EQ(type::kGRPC, "io.containerd.grpc.v1");
  EXPECT_EQ(type::kService, "io.containerd.service.v1");
  EXPECT_EQ(type::kSnapshot, "io.containerd.snapshotter.v1");
  EXPECT_EQ(type::kRuntimeV2, "io.containerd.runtime.v2");
  EXPECT_EQ(type::kEvent, "io.containerd.event.v1");
  EXPECT_EQ(type::kMetadata, "io.containerd.metadata.v1");
  EXPECT_EQ(type::kGC, "io.containerd.gc.v1");
  EXPECT_EQ(type::kDiff, "io.containerd.differ.v1");
  EXPECT_EQ(type::kTaskMonitor, "io.containerd.monitor.v1");
  EXPECT_EQ(type::kTTRPC, "io.containerd.ttrpc.v1");
  EXPECT_EQ(type::kInternal, "io.containerd.internal.v1");
  EXPECT_EQ(type::kRuntime, "io.containerd.runtime.v1");
  EXPECT_EQ(reg("io.containerd.content.v1", "content").uri(), "io.containerd.content.v1.content");
}

TEST(Registry, RejectsEmptyTypeOrIdNamingThePlugin) {
  Registry r;
  auto s = r.add(reg("", "x"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find(".x"), std::string::npos) << s.message();
  s = r.add(reg("io.t.v1", ""));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("io.t.v1"), std::string::npos) << s.message();
}

TEST(Registry, RejectsDuplicate) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.t.v1", "a")).ok());
  auto s = r.add(reg("io.t.v1", "a"));
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_NE(s.message().find("io.t.v1.a"), std::string::npos);
  EXPECT_TRUE(r.add(reg("io.t.v1", "b")).ok());
  EXPECT_TRUE(r.add(reg("io.u.v1", "a")).ok());
}

TEST(Registry, RejectsStarNotAlone) {
  Registry r;
  auto s = r.add(reg("io.t.v1", "a", {"*", "io.u.v1"}));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("io.t.v1.a"), std::string::npos);
  EXPECT_TRUE(r.add(reg("io.t.v1", "b", {"*"})).ok());
}

TEST(Registry, RejectsMissingInit) {
  Registry r;
  Registration x = reg("io.t.v1", "a");
  x.init = nullptr;
  EXPECT_EQ(r.add(std::move(x)).code(), Code::kInvalidArgument);
}

TEST(Graph, RequirementsComeFirst) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.grpc.v1", "svc", {"io.service.v1"})).ok());
  ASSERT_TRUE(r.add(reg("io.service.v1", "s", {"io.meta.v1", "io.content.v1"})).ok());
  ASSERT_TRUE(r.add(reg("io.meta.v1", "m", {"io.content.v1"})).ok());
  ASSERT_TRUE(r.add(reg("io.content.v1", "c")).ok());
  auto g = r.graph();
  auto u = uris(g);
  ASSERT_EQ(u.size(), 4u);
  for (const auto& n : g) EXPECT_TRUE(n.unsatisfied.ok()) << n.registration->uri();
  EXPECT_LT(index_of(u, "io.content.v1.c"), index_of(u, "io.meta.v1.m"));
  EXPECT_LT(index_of(u, "io.meta.v1.m"), index_of(u, "io.service.v1.s"));
  EXPECT_LT(index_of(u, "io.service.v1.s"), index_of(u, "io.grpc.v1.svc"));
}

TEST(Graph, StarComesAfterEverything) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.late.v1", "last", {"*"})).ok());
  ASSERT_TRUE(r.add(reg("io.a.v1", "a")).ok());
  ASSERT_TRUE(r.add(reg("io.b.v1", "b", {"io.a.v1"})).ok());
  auto u = uris(r.graph());
  EXPECT_EQ(u.back(), "io.late.v1.last");
}

TEST(Graph, DeterministicForSameInput) {
  auto build = [] {
    Registry r;
    for (int i = 0; i < 20; ++i) {
      std::vector<std::string> req;
      if (i % 3 == 0 && i > 0) req.push_back("io.t" + std::to_string(i - 1) + ".v1");
      EXPECT_TRUE(r.add(reg("io.t" + std::to_string(i % 7) + ".v1", "p" + std::to_string(i), req)).ok());
    }
    return uris(r.graph());
  };
  auto first = build();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(build(), first);
}

TEST(Graph, DisabledPluginsAreLeftOut) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.a.v1", "a")).ok());
  ASSERT_TRUE(r.add(reg("io.b.v1", "b")).ok());
  auto u = uris(r.graph([](const Registration& x) { return x.uri() == "io.a.v1.a"; }));
  EXPECT_EQ(u, std::vector<std::string>{"io.b.v1.b"});
}

TEST(Graph, MissingRequirementIsReportedByName) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.a.v1", "needy", {"io.absent.v1"})).ok());
  ASSERT_TRUE(r.add(reg("io.b.v1", "fine")).ok());
  auto g = r.graph();
  ASSERT_EQ(g.size(), 2u);
  for (const auto& n : g) {
    if (n.registration->id == "needy") {
      EXPECT_EQ(n.unsatisfied.code(), Code::kFailedPrecondition);
      EXPECT_NE(n.unsatisfied.message().find("io.absent.v1"), std::string::npos);
    } else {
      EXPECT_TRUE(n.unsatisfied.ok());
    }
  }
}

TEST(Graph, RequirementOnDisabledPluginIsMissing) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.a.v1", "a")).ok());
  ASSERT_TRUE(r.add(reg("io.b.v1", "b", {"io.a.v1"})).ok());
  auto g = r.graph([](const Registration& x) { return x.id == "a"; });
  ASSERT_EQ(g.size(), 1u);
  EXPECT_FALSE(g[0].unsatisfied.ok());
}

TEST(Graph, OptionalRequirementOrdersButMayBeAbsent) {
  Registry r;
  Registration meta = reg("io.meta.v1", "m");
  meta.optional_requirements = {"io.snap.v1", "io.nothing.v1"};
  ASSERT_TRUE(r.add(std::move(meta)).ok());
  ASSERT_TRUE(r.add(reg("io.snap.v1", "s")).ok());
  auto g = r.graph();
  auto u = uris(g);
  EXPECT_LT(index_of(u, "io.snap.v1.s"), index_of(u, "io.meta.v1.m"));
  for (const auto& n : g) EXPECT_TRUE(n.unsatisfied.ok());
}

TEST(Graph, CycleIsReportedOnItsMembersOthersStart) {
  Registry r;
  ASSERT_TRUE(r.add(reg("io.a.v1", "a", {"io.b.v1"})).ok());
  ASSERT_TRUE(r.add(reg("io.b.v1", "b", {"io.a.v1"})).ok());
  ASSERT_TRUE(r.add(reg("io.c.v1", "c")).ok());
  auto g = r.graph();
  ASSERT_EQ(g.size(), 3u);
  for (const auto& n : g) {
    if (n.registration->id == "c") {
      EXPECT_TRUE(n.unsatisfied.ok());
    } else {
      EXPECT_FALSE(n.unsatisfied.ok()) << n.registration->uri();
      EXPECT_NE(n.unsatisfied.message().find("cycle"), std::string::npos);
      EXPECT_NE(n.unsatisfied.message().find("io.a.v1.a"), std::string::npos);
      EXPECT_NE(n.unsatisfied.message().find("io.b.v1.b"), std::string::npos);
    }
  }
}

struct Store {
  virtual ~Store() = default;
  virtual int value() const = 0;
};
struct LocalStore : Store, Closer {
  int value() const override { return 7; }
  errdefs::Status close() override {
    closed = true;
    return errdefs::Status::Ok();
  }
  bool closed = false;
};
struct Unrelated {};

TEST(Instance, TypedAccessAndWrongTypeIsAnError) {
  auto local = std::make_shared<LocalStore>();
  Instance inst = Instance::of<LocalStore, Store>(local);
  auto s = inst.get<Store>();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->value(), 7);
  EXPECT_TRUE(inst.get<LocalStore>().ok());
  auto bad = inst.get<Unrelated>();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("LocalStore"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("Unrelated"), std::string::npos);
  ASSERT_TRUE(inst.closer());
  EXPECT_TRUE(inst.closer()->close().ok());
  EXPECT_TRUE(local->closed);
  EXPECT_FALSE(Instance().get<Store>().ok());
}

TEST(Set, DuplicateAddIsAlreadyExists) {
  Registration r = reg("io.a.v1", "a");
  Set set;
  ASSERT_TRUE(set.add(std::make_shared<Plugin>(r, Meta{}, Instance(), errdefs::Status::Ok())).ok());
  auto s = set.add(std::make_shared<Plugin>(r, Meta{}, Instance(), errdefs::Status::Ok()));
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
}

TEST(Plugin, StatusFromInitError) {
  Registration r = reg("io.a.v1", "a");
  EXPECT_EQ(Plugin(r, {}, Instance(), errdefs::Status::Ok()).status(), "ok");
  EXPECT_EQ(Plugin(r, {}, Instance(), errdefs::Skip("no btrfs")).status(), "skip");
  EXPECT_EQ(Plugin(r, {}, Instance(), errdefs::Internal("boom")).status(), "error");
}

struct CfgA {
  std::string path = "/default";
  void bind(config::Binder& b) { b.field("path", path); }
};
struct CfgB {
  void bind(config::Binder&) {}
};

TEST(InitContext, PathsConfigAndLookups) {
  Registration content = reg(std::string(type::kContent), "content");
  Registration other = reg(std::string(type::kContent), "other");
  Registration failing = reg(std::string(type::kSnapshot), "broken");
  Registration meta = reg(std::string(type::kMetadata), "db");

  auto set = std::make_shared<Set>();
  ASSERT_TRUE(
      set->add(std::make_shared<Plugin>(failing, Meta{}, Instance(), errdefs::Internal("no fs"))).ok());
  auto local = std::make_shared<LocalStore>();
  ASSERT_TRUE(set->add(std::make_shared<Plugin>(content, Meta{}, Instance::of<LocalStore, Store>(local),
                                                errdefs::Status::Ok()))
                  .ok());
  ASSERT_TRUE(set->add(std::make_shared<Plugin>(
                           other, Meta{}, Instance::of<LocalStore, Store>(std::make_shared<LocalStore>()),
                           errdefs::Status::Ok()))
                  .ok());

  auto cfg = std::shared_ptr<ConfigHolder>(typed_config<CfgA>(CfgA{"/custom"})());
  InitContext ic(meta, {.root = "/var/lib/ctrd", .state = "/run/ctrd", .grpc_address = "/run/ctrd/ctrd.sock"},
                 cfg, set);
  EXPECT_EQ(ic.root(), "/var/lib/ctrd/io.containerd.metadata.v1.db");
  EXPECT_EQ(ic.state(), "/run/ctrd/io.containerd.metadata.v1.db");
  EXPECT_EQ(ic.grpc_address(), "/run/ctrd/ctrd.sock");

  auto c = ic.config<CfgA>();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->path, "/custom");
  EXPECT_FALSE(ic.config<CfgB>().ok());

  auto first = ic.get<Store>(type::kContent);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->get(), local.get());  // first initialized
  EXPECT_TRUE(ic.get_by_id<Store>(type::kContent, "other").ok());
  EXPECT_EQ(ic.get_by_id<Store>(type::kContent, "nope").status().code(), Code::kNotFound);
  EXPECT_EQ(ic.get<Store>(type::kGC).status().code(), Code::kNotFound);
  auto broken = ic.get<Store>(type::kSnapshot);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("no fs"), std::string::npos);
  EXPECT_EQ(ic.get_by_type(type::kContent).size(), 2u);
  EXPECT_EQ(ic.get_all().size(), 3u);
  EXPECT_FALSE(ic.get<Unrelated>(type::kContent).ok());
}

}  // namespace
}  // namespace ctrd::plugin
