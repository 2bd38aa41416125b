#include <gtest/gtest.h>

#include <sstream>

#include "config/binder.h"

namespace ctrd::config {
namespace {

using namespace std::chrono_literals;

struct Inner {
  std::string address = "/run/x.sock";
  uint32_t uid = 0;
  void bind(Binder& b) {
    b.field("address", address);
    b.field("uid", uid);
  }
};

struct Sample {
  bool flag = false;
  int64_t size = 10;
  std::string name = "n";
  Duration timeout{5s};
  std::vector<std::string> list{"a"};
  std::map<std::string, std::string> labels;
  Inner inner;
  void bind(Binder& b) {
    b.field("flag", flag);
    b.field("size", size);
    b.field("name", name);
    b.field("timeout", timeout);
    b.field("list", list);
    b.field("labels", labels);
    b.section("inner", inner);
  }
};

toml::table parse(std::string_view text) { return toml::parse(text); }

TEST(Binder, DecodesEveryFieldKind) {
  Sample s;
  auto t = parse(R"(
flag = true
size = 42
name = "x"
timeout = "1m30s"
list = ["b", "c"]
labels = { k = "v" }
[inner]
address = "/tmp/a"
uid = 7
)");
  auto r = decode_into(t, "", s);
  ASSERT_TRUE(r.error.ok()) << r.error.message();
  EXPECT_TRUE(r.unknown_keys.empty());
  EXPECT_TRUE(s.flag);
  EXPECT_EQ(s.size, 42);
  EXPECT_EQ(s.name, "x");
  EXPECT_EQ(s.timeout.value, 90s);
  EXPECT_EQ(s.list, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(s.labels.at("k"), "v");
  EXPECT_EQ(s.inner.address, "/tmp/a");
  EXPECT_EQ(s.inner.uid, 7u);
}

TEST(Binder, AbsentKeysKeepDefaults) {
  Sample s;
  auto r = decode_into(parse("size = 1"), "", s);
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(s.name, "n");
  EXPECT_EQ(s.timeout.value, 5s);
}

TEST(Binder, WrongTypeNamesFullKeyPath) {
  Sample s;
  auto r = decode_into(parse("[inner]\nuid = \"root\"\n"), "plugins.\"io.x.v1.y\"", s);
  ASSERT_FALSE(r.error.ok());
  EXPECT_EQ(r.error.code(), errdefs::Code::kInvalidArgument);
  EXPECT_NE(r.error.message().find("plugins.\"io.x.v1.y\".inner.uid"), std::string::npos)
      << r.error.message();
  EXPECT_NE(r.error.message().find("expected integer"), std::string::npos);
}

TEST(Binder, BadDurationNamesKey) {
  Sample s;
  auto r = decode_into(parse("timeout = \"10 parsecs\""), "timeouts", s);
  ASSERT_FALSE(r.error.ok());
  EXPECT_NE(r.error.message().find("timeouts.timeout"), std::string::npos) << r.error.message();
}

TEST(Binder, OutOfRangeIntegerIsAnError) {
  Sample s;
  auto r = decode_into(parse("[inner]\nuid = -1\n"), "", s);
  EXPECT_FALSE(r.error.ok());
}

TEST(Binder, UnknownKeysAreReportedWithPath) {
  Sample s;
  auto r = decode_into(parse("bogus = 1\n[inner]\nextra = 2\n"), "", s);
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(r.unknown_keys, (std::vector<std::string>{"inner.extra", "bogus"}));
}

TEST(Binder, EncodeRoundTrips) {
  Sample s;
  s.size = 99;
  s.timeout.value = 1500ms;
  s.labels["a.b"] = "c";
  auto t = encode_from(s);
  std::ostringstream os;
  os << *t;
  Sample back;
  auto r = decode_into(parse(os.str()), "", back);
  ASSERT_TRUE(r.error.ok()) << os.str();
  EXPECT_EQ(back.size, 99);
  EXPECT_EQ(back.timeout.value, 1500ms);
  EXPECT_EQ(back.labels.at("a.b"), "c");
}

struct Runtimes {
  std::map<std::string, Inner> runtimes{{"runc", Inner{.address = "/run/runc.sock", .uid = 0}}};
  void bind(Binder& b) { b.section_map("runtimes", runtimes); }
};

TEST(Binder, SectionMapsMergeNamedTablesIntoTheDefaults) {
  Runtimes r;
  auto t = parse(R"(
[runtimes.runc]
uid = 5
[runtimes."io.x"]
address = "/run/x"
extra = 1
)");
  auto report = decode_into(t, "plugins.\"cri\"", r);
  ASSERT_TRUE(report.error.ok()) << report.error.message();
  ASSERT_EQ(r.runtimes.size(), 2u);
  // A default entry keeps what the file does not set.
  EXPECT_EQ(r.runtimes["runc"].address, "/run/runc.sock");
  EXPECT_EQ(r.runtimes["runc"].uid, 5u);
  EXPECT_EQ(r.runtimes["io.x"].address, "/run/x");
  EXPECT_EQ(report.unknown_keys, std::vector<std::string>{"plugins.\"cri\".runtimes.\"io.x\".extra"});

  auto bad = parse("runtimes = { runc = 1 }");
  Runtimes b;
  auto failed = decode_into(bad, "", b);
  EXPECT_EQ(failed.error.message(), "runtimes.runc: expected table, got integer");

  auto encoded = encode_from(r);
  EXPECT_EQ(encoded->at_path("runtimes.runc.uid").value<int64_t>(), 5);
  EXPECT_EQ((*(*encoded)["runtimes"].as_table())["io.x"]["address"].value<std::string>(), "/run/x");
}

TEST(Duration, ParsesGoSyntax) {
  EXPECT_EQ(*parse_duration("0"), 0ns);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("1h2m3s"), 1h + 2min + 3s);
  EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(*parse_duration("-2s"), -2s);
  EXPECT_EQ(*parse_duration("3us"), 3us);
  EXPECT_FALSE(parse_duration("").ok());
  EXPECT_FALSE(parse_duration("5").ok());
  EXPECT_FALSE(parse_duration("5x").ok());
  EXPECT_FALSE(parse_duration("s").ok());
}

TEST(Duration, FormatsLikeGo) {
  EXPECT_EQ(format_duration(0ns), "0s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(2h), "2h0m0s");
  EXPECT_EQ(format_duration(100ms), "100ms");
  for (std::chrono::nanoseconds d :
       {std::chrono::nanoseconds(1ns), std::chrono::nanoseconds(999us), std::chrono::nanoseconds(3s),
        std::chrono::nanoseconds(4h + 5s), std::chrono::nanoseconds(1234567ns)})
    EXPECT_EQ(*parse_duration(format_duration(d)), d);
}

}  // namespace
}  // namespace ctrd::config
