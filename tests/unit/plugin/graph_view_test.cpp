#include "plugin/graph_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "test_registrations.h"

namespace ctrd::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A daemon-shaped registry: a base plugin, two services on it, a front end
// on the services, plus a cycle and a requirement nothing provides.
Registry sample() {
  Registry r;
  EXPECT_TRUE(r.add(reg("io.containerd.metadata.v1", "lmdb")).ok());
  EXPECT_TRUE(r.add(reg("io.containerd.service.v1", "a-service", {"io.containerd.metadata.v1"})).ok());
  EXPECT_TRUE(r.add(reg("io.containerd.service.v1", "b-service", {"io.containerd.metadata.v1"})).ok());
  EXPECT_TRUE(r.add(reg("io.containerd.grpc.v1", "a", {"io.containerd.service.v1"})).ok());
  EXPECT_TRUE(r.add(reg("io.example.x.v1", "x", {"io.example.y.v1"})).ok());
  EXPECT_TRUE(r.add(reg("io.example.y.v1", "y", {"io.example.x.v1"})).ok());
  EXPECT_TRUE(r.add(reg("io.example.z.v1", "z", {"io.example.nothing.v1"})).ok());
  return r;
}

std::string render(const Registry& r, GraphFormat format, const std::string& disabled = "") {
  std::ostringstream out;
  write_graph(
      r, [&](const Registration& reg) { return reg.uri() == disabled; }, format, out);
  return out.str();
}

TEST(GraphView, TextListsLayersRequirementsAndProblems) {
  const std::string text = render(sample(), GraphFormat::kText);
  EXPECT_THAT(text, HasSubstr("io.containerd.metadata.v1.lmdb  [base]\n"));
  EXPECT_THAT(
      text,
      HasSubstr("io.containerd.service.v1.a-service  [service]  requires: io.containerd.metadata.v1.lmdb"));
  // A type several plugins provide is named once, with how many.
  EXPECT_THAT(text,
              HasSubstr("io.containerd.grpc.v1.a  [api]  requires: io.containerd.service.v1 (2 plugins)"));
  EXPECT_THAT(text, HasSubstr("io.example.z.v1.z  [base]  MISSING: io.example.nothing.v1  UNSATISFIED:"));
  // Both plugins of the cycle are marked, with a reason naming a cycle.
  for (const char* uri : {"io.example.x.v1.x", "io.example.y.v1.y"}) {
    const auto line_start = text.find(uri);
    ASSERT_NE(line_start, std::string::npos) << uri;
    const std::string line = text.substr(line_start, text.find('\n', line_start) - line_start);
    EXPECT_THAT(line, HasSubstr("UNSATISFIED:")) << line;
    EXPECT_THAT(line, HasSubstr("cycle")) << line;
  }
}

TEST(GraphView, DotIsAGraphWithClustersEdgesAndMarks) {
  const std::string dot = render(sample(), GraphFormat::kDot, "io.containerd.service.v1.b-service");
  EXPECT_TRUE(dot.starts_with("digraph plugins {\n"));
  EXPECT_TRUE(dot.ends_with("}\n"));
  for (const char* cluster : {"cluster_api", "cluster_service", "cluster_base"})
    EXPECT_THAT(dot, HasSubstr(cluster));
  EXPECT_THAT(dot,
              HasSubstr("\"io.containerd.service.v1.a-service\" -> \"io.containerd.metadata.v1.lmdb\";"));
  // With b disabled, the front end depends on the one service left.
  EXPECT_THAT(dot, HasSubstr("\"io.containerd.grpc.v1.a\" -> \"io.containerd.service.v1.a-service\";"));
  EXPECT_THAT(dot, HasSubstr("(disabled)"));
  EXPECT_THAT(dot, HasSubstr("\"missing: io.example.nothing.v1\" [shape=octagon"));
  EXPECT_THAT(dot, HasSubstr("color=red"));
  // Labels are quoted: a quote in a reason cannot break the file.
  EXPECT_THAT(dot, Not(HasSubstr("\"\"")));
}

TEST(GraphView, FormatNames) {
  EXPECT_EQ(parse_graph_format("dot").value(), GraphFormat::kDot);
  EXPECT_EQ(parse_graph_format("").value(), GraphFormat::kText);
  EXPECT_EQ(parse_graph_format("svg").status().code(), errdefs::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrd::plugin
