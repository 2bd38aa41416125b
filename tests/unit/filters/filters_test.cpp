#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "filters/filters.h"
#include "filters/scanner.h"

namespace ctrd::filters {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A small catalogue of images to filter, chosen so that each case below picks
// a different subset. An empty string stands for an absent field.
struct Image {
  std::string name;
  std::string runtime;
  std::map<std::string, std::string> labels;
};

const std::vector<Image>& catalogue() {
  static const std::vector<Image> images = {
      {"redis", "", {{"env", "prod"}}},                            // 0
      {"nginx", "", {}},                                           // 1
      {"redis", "", {{"env", "staging"}, {"team owner", "db"}}},   // 2
      {"nginx", "", {{"tier", "web"}}},                            // 3
      {"postgres-main", "", {{"quote \\ and \"", "yes"}}},         // 4
      {"postgres-main", "", {{"quote \\ and \".suffix", "yes"}}},  // 5
      {"etcd", "io.containerd.runc.v2, legacy", {}},               // 6
      {"etcdo", "abc", {}},                                        // 7
      {"busybox", "", {{"env", "dev_x.y-z"}}},                     // 8
  };
  return images;
}

// Labels are keyed by the rest of the path joined with dots, as containerd's
// services do, so `labels.a.b` and `labels."a.b"` name the same label.
Adaptor adapt(const Image& image) {
  return [&image](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    const auto non_empty = [](const std::string& v) -> std::optional<std::string> {
      if (v.empty()) return std::nullopt;
      return v;
    };
    if (path[0] == "name") return non_empty(image.name);
    if (path[0] == "runtime") return non_empty(image.runtime);
    if (path[0] == "labels") {
      std::string key;
      for (size_t i = 1; i < path.size(); ++i) key += (i > 1 ? "." : "") + path[i];
      if (auto it = image.labels.find(key); it != image.labels.end()) return it->second;
    }
    return std::nullopt;
  };
}

std::vector<int> matching(const Filter& filter) {
  std::vector<int> out;
  for (size_t i = 0; i < catalogue().size(); ++i) {
    if (filter.match(adapt(catalogue()[i]))) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::vector<int> matching(std::string_view text) {
  auto filter = parse(text);
  EXPECT_TRUE(filter.ok()) << text << ": " << filter.status().message();
  if (!filter.ok()) return {-1};
  return matching(*filter);
}

std::vector<int> all_but(std::initializer_list<int> excluded) {
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(catalogue().size()); ++i) {
    if (std::find(excluded.begin(), excluded.end(), i) == excluded.end()) out.push_back(i);
  }
  return out;
}

// The message of the InvalidArgument that parsing `text` must fail with.
std::string parse_error(std::string_view text) {
  auto filter = parse(text);
  if (filter.ok()) return "<parsed>";
  EXPECT_EQ(filter.status().code(), errdefs::Code::kInvalidArgument) << text;
  return filter.status().message();
}

struct MatchCase {
  const char* text;
  std::vector<int> expected;
};

TEST(Filters, SelectsTheExpectedImages) {
  const MatchCase cases[] = {
      {"", all_but({})},
      {"name", all_but({})},
      {"labels.env", {0, 2, 8}},
      {"labels.env,name", {0, 2, 8}},
      {"labels.env==prod", {0}},
      {"labels.env==dev_x.y-z", {8}},  // a bare value may hold '.', '-' and '_'
      {"name==nginx", {1, 3}},
      {"name!=nginx", {0, 2, 4, 5, 6, 7, 8}},
      {"name==nginx,labels.tier", {3}},
      {"name==nginx,labels.tier==web", {3}},
      {"name==nginx,labels.tier==db", {}},
      {R"(runtime=="io.containerd.runc.v2, legacy")", {6}},
      {"runtime~=[abc]+,name!=redis", {6, 7}},
      {"runtime~=/[abc]+/,name!=redis", {6, 7}},
      {"runtime~=/[abc]{1,2}/,name!=redis", {6, 7}},    // the quotes keep the comma in the regexp
      {R"(runtime~=/[abc]{0,1}"\//,name!=redis)", {}},  // valid, but no runtime holds `"/`
      {R"(name==redis,labels."team owner")", {2}},
      {R"(labels."quote \\ and \""==yes)", {4}},
      {R"(labels."quote \\ and \"".suffix==yes)", {5}},
      {R"(labels."env"==prod)", {0}},
      {R"("name"==etcd)", {6}},
  };
  for (const auto& c : cases) EXPECT_EQ(matching(c.text), c.expected) << c.text;
}

TEST(Filters, ReportsWhereAndWhatWasExpected) {
  const std::pair<const char*, const char*> cases[] = {
      {"labels.|env|==prod", "filters: parse error: [labels. >|||< env|==prod]: invalid quote encountered"},
      {R"(labels.?"quote"==yes)",
       R"(filters: parse error: [labels. >|?|< "quote"==yes]: expected field or quoted)"},
      {"name==redis,", "filters: parse error: [name==redis,]: expected field or quoted"},
      {"labels.", "filters: parse error: [labels.]: expected field or quoted"},
      {"image~=,id?=?fbaq", "filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted"},
      {"labels.ns/key==value",
       "filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated"},
      {"labels.key==/value",
       "filters: parse error: [labels.key== >|/|< value]: quoted literal not terminated"},
      {"   ", "filters: parse error: [   ]: expected field or quoted"},
      {"name,,x", "filters: parse error: [name, >|,|< x]: expected field or quoted"},
      {"name==", "filters: parse error: [name==]: expected value or quoted"},
      {"name=redis", R"(filters: parse error: [name >|=|< redis]: unsupported operator "=")"},
      {"name===redis", R"(filters: parse error: [name >|=|< ==redis]: unsupported operator "===")"},
      {"name redis", R"(filters: parse error: [name  >|r|< edis]: expected an operator ("=="|"!="|"~="))"},
      {"name ", R"(filters: parse error: [name ]: expected an operator ("=="|"!="|"~="))"},
      {"name==redis ,x", "filters: parse error: [name==redis >| |< ,x]: unexpected input:  "},
      {"name==redis ", "filters: parse error: [name==redis >| |< ]: unexpected input:  "},
      {R"(name=="x".y)", R"(filters: parse error: [name=="x" >|.|< y]: unexpected input: .)"},
      {"name==|redis|", "filters: parse error: [name== >|||< redis|]: invalid quote encountered"},
      {R"(name=="unterminated)",
       R"(filters: parse error: [name== >|"|< unterminated]: quoted literal not terminated)"},
      {"labels.\"a\nb\"==x",
       "filters: parse error: [labels. >|\"|< a\nb\"==x]: quoted literal not terminated"},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(parse_error(text), message) << text;
}

TEST(Filters, MarksAWholeCharacterAtTheErrorPosition) {
  EXPECT_EQ(parse_error("名==x"), "filters: parse error: [ >|名|< ==x]: expected field or quoted");
  EXPECT_EQ(parse_error("labels.名"), "filters: parse error: [labels. >|名|< ]: expected field or quoted");
}

TEST(Filters, RefusesNulAndMalformedUtf8) {
  EXPECT_EQ(parse_error(std::string("name\0x", 6)),
            std::string("filters: parse error: [name >|\0|< x]: unexpected null", 53));
  EXPECT_EQ(parse_error("name==\xff"), "filters: parse error: [name== >|\xff|< ]: rune error");
  // containerd cannot tell a literal U+FFFD from a decoding error, so neither do we.
  EXPECT_EQ(parse_error("name==\xef\xbf\xbd"),
            "filters: parse error: [name== >|\xef\xbf\xbd|< ]: rune error");
  // A character that cannot continue a bare value ends it, and is then unexpected.
  EXPECT_EQ(parse_error("name==ab\x01"),
            "filters: parse error: [name==ab >|\x01|< ]: unexpected input: \x01");
}

TEST(Filters, DecodesGoStringEscapesInQuotes) {
  EXPECT_EQ(matching(R"("na\x6de"==redis)"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching(R"("\u006eame"=="r\145dis")"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching(R"(name=="\U00000072edis")"), (std::vector<int>{0, 2}));

  const Adaptor controls = [](const std::vector<std::string>&) -> std::optional<std::string> {
    return std::string("\a\b\f\n\r\t\v\\\"\xe2\x82\xac");
  };
  auto filter = parse(R"(x=="\a\b\f\n\r\t\v\\\"\u20ac")");
  ASSERT_TRUE(filter.ok()) << filter.status().message();
  EXPECT_TRUE(filter->match(controls));
}

TEST(Filters, RefusesBadEscapes) {
  EXPECT_EQ(parse_error(R"(labels."\g")"),
            R"(filters: parse error: [labels. >|"|< \g"]: illegal escape sequence)");
  EXPECT_EQ(parse_error(R"(labels."\xaz")"),
            R"(filters: parse error: [labels. >|"|< \xaz"]: illegal numeric escape sequence)");
  // Three octal digits scan, but \400 is beyond a byte.
  EXPECT_EQ(parse_error(R"(labels."\400"==x)"),
            R"(filters: parse error: [labels. >|"|< \400"==x]: unquoting failed: quote syntax error)");
  EXPECT_EQ(parse_error(R"(x=="\U00110000")"),
            R"(filters: parse error: [x== >|"|< \U00110000"]: unquoting failed: quote syntax error)");
  // Only the enclosing quote may be escaped; a regexp escape needs a bare value or "\\d".
  EXPECT_EQ(parse_error(R"(name~=/\d/)"),
            R"(filters: parse error: [name~= >|/|< \d/]: illegal escape sequence)");
  EXPECT_EQ(parse_error(R"(x=="\/")"), R"(filters: parse error: [x== >|"|< \/"]: illegal escape sequence)");
  // The first problem is the one reported.
  EXPECT_EQ(parse_error(R"(x=="\q)"), R"(filters: parse error: [x== >|"|< \q]: illegal escape sequence)");
}

TEST(Filters, MatchesRegularExpressionsWithGoSyntax) {
  EXPECT_EQ(matching("name~=|^re|"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching("name~=/^re/"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching(R"(name~="^re")"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching("name~=(?i)^REDIS$"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching("name~=^[a-z]+$"), all_but({4, 5}));
  EXPECT_EQ(matching(R"(name~=\w-\w)"), (std::vector<int>{4, 5}));
  EXPECT_EQ(matching(R"(name~="\\w-\\w")"), (std::vector<int>{4, 5}));
  EXPECT_EQ(matching(R"(name~=|^etcd\|^busy|)"), (std::vector<int>{6, 7, 8}));  // \| is the quote itself
  // Unanchored, like Go's MatchString.
  EXPECT_EQ(matching("name~=gin"), (std::vector<int>{1, 3}));
}

TEST(Filters, RefusesAnInvalidRegularExpression) {
  for (const char* text : {"name~=(", "name~=[a-", "name~=a{1001}", "name~=x**", R"(name~=\8)"}) {
    auto filter = parse(text);
    ASSERT_FALSE(filter.ok()) << text;
    EXPECT_EQ(filter.status().code(), errdefs::Code::kInvalidArgument);
    EXPECT_THAT(filter.status().message(), StartsWith("filters: parse error: [name~= >|")) << text;
    EXPECT_THAT(filter.status().message(), HasSubstr("invalid regular expression: ")) << text;
  }
}

TEST(Filters, BoundsWhatRegularExpressionsMayCost) {
  // Fine for Go, but each copy of \p{L} is hundreds of instructions.
  auto huge = parse(R"(name~=\p{L}{1000})");
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.status().message(), HasSubstr("invalid regular expression: "));

  std::string many;
  for (int i = 0; i < 64; ++i) many += (i ? ",name~=" : "name~=") + std::to_string(i);
  EXPECT_TRUE(parse(many).ok());
  EXPECT_THAT(parse(many + ",name~=x").status().message(),
              HasSubstr("]: too many regular expressions (at most 64 per filter)"));
  // The budget covers all the texts of a parse_all.
  EXPECT_TRUE(parse_all({many, "name==x"}).ok());
  EXPECT_FALSE(parse_all({many, "name~=x"}).ok());
}

TEST(Filters, TreatsAnAbsentFieldAsEmptyForNotEqualAndRegexp) {
  EXPECT_EQ(matching("runtime!=abc"), all_but({7}));
  EXPECT_EQ(matching("runtime~=^$"), all_but({6, 7}));
  EXPECT_EQ(matching(R"(runtime=="")"), (std::vector<int>{}));  // == needs the field
  EXPECT_EQ(matching(R"(runtime!="")"), (std::vector<int>{6, 7}));
}

TEST(Filters, AllowsSpacesAroundTokensButNotBeforeASeparator) {
  EXPECT_EQ(matching("  name  ==  redis"), (std::vector<int>{0, 2}));
  EXPECT_EQ(matching("name==redis, labels.env==prod"), (std::vector<int>{0}));
  EXPECT_EQ(matching("name==redis,\tlabels.env"), (std::vector<int>{0, 2}));
  EXPECT_EQ(parse_error("name==redis , labels.env"),
            "filters: parse error: [name==redis >| |< , labels.env]: unexpected input:  ");
}

TEST(Filters, MatchesNonAsciiValues) {
  const Adaptor cow = [](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path == std::vector<std::string>{"name"}) return "牛牛";
    return std::nullopt;
  };
  for (const char* text : {"name~=牛", "name~=|牛|", "name==牛牛", "name~=^.{2}$"}) {
    auto filter = parse(text);
    ASSERT_TRUE(filter.ok()) << text << ": " << filter.status().message();
    EXPECT_TRUE(filter->match(cow)) << text;
  }
}

TEST(Filters, PipeIsNotAnOperatorInsideAText) {
  // containerd reads `|` as a regexp quote, and inside a bare value as itself.
  const Adaptor piped = [](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path == std::vector<std::string>{"name"}) return "redis|name==nginx";
    return std::nullopt;
  };
  auto filter = parse("name==redis|name==nginx");
  ASSERT_TRUE(filter.ok()) << filter.status().message();
  EXPECT_TRUE(filter->match(piped));
  EXPECT_EQ(matching(*filter), (std::vector<int>{}));
  EXPECT_EQ(parse_error("name|name==x"),
            "filters: parse error: [name >|||< name==x]: quoted literal not terminated");
}

TEST(FiltersParseAll, OrsTheTextsEachOfWhichAndsItsSelectors) {
  // `,` binds within a text; alternatives are separate texts.
  auto filter = parse_all({"name==redis,labels.env==prod", "name==nginx"});
  ASSERT_TRUE(filter.ok()) << filter.status().message();
  EXPECT_FALSE(filter->empty());
  EXPECT_EQ(matching(*filter), (std::vector<int>{0, 1, 3}));

  auto both = parse_all({"labels.env", "runtime~=b"});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(matching(*both), (std::vector<int>{0, 2, 7, 8}));
}

TEST(FiltersParseAll, MatchesAllWithNoTextsOrAnEmptyOne) {
  auto none = parse_all({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(matching(*none), all_but({}));

  auto with_empty = parse_all({"name==nginx", ""});
  ASSERT_TRUE(with_empty.ok());
  EXPECT_TRUE(with_empty->empty());
  EXPECT_EQ(matching(*with_empty), all_but({}));
}

TEST(FiltersParseAll, FailsWhenAnyTextFails) {
  auto filter = parse_all({"", "name==redis", "name=="});
  ASSERT_FALSE(filter.ok());
  EXPECT_EQ(filter.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(filter.status().message(), "filters: parse error: [name==]: expected value or quoted");
}

TEST(FiltersObject, DefaultMatchesEverythingAndCopiesShareTheSelectors) {
  Filter everything;
  EXPECT_TRUE(everything.empty());
  EXPECT_TRUE(everything.match(adapt(catalogue()[0])));
  EXPECT_TRUE(everything.match(Adaptor()));

  auto parsed = parse("name==nginx");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->empty());
  Filter copy = *parsed;
  Filter assigned;
  assigned = copy;
  Filter moved = std::move(copy);
  for (const Filter* f : {&*parsed, &assigned, &moved}) EXPECT_EQ(matching(*f), (std::vector<int>{1, 3}));
}

TEST(FiltersObject, AnEmptyAdaptorHasNoFields) {
  auto present = parse("name");
  auto not_equal = parse("name!=x");
  ASSERT_TRUE(present.ok() && not_equal.ok());
  EXPECT_FALSE(present->match(Adaptor()));
  EXPECT_TRUE(not_equal->match(Adaptor()));
}

// The token stream itself, to pin down positions and the value/field switch.
struct Expected {
  size_t pos;
  internal::Token token;
  std::string text;
};

std::vector<Expected> tokens(std::string_view input) {
  internal::Scanner scanner(input);
  std::vector<Expected> out;
  for (int guard = 0; guard < 100; ++guard) {
    const internal::Lexeme l = scanner.scan();
    out.push_back({l.pos, l.token, std::string(l.text)});
    if (l.token == internal::Token::kEndOfInput) break;
  }
  return out;
}

bool operator==(const Expected& a, const Expected& b) {
  return a.pos == b.pos && a.token == b.token && a.text == b.text;
}
void PrintTo(const Expected& e, std::ostream* os) {
  *os << "{" << e.pos << ", " << static_cast<int>(e.token) << ", \"" << e.text << "\"}";
}

using internal::Token;

TEST(FiltersScanner, SwitchesToAValueAfterAnOperator) {
  EXPECT_THAT(tokens("env==prod,tier!=web"),
              ElementsAre(Expected{0, Token::kField, "env"}, Expected{3, Token::kOperator, "=="},
                          Expected{5, Token::kValue, "prod"}, Expected{9, Token::kSeparator, ","},
                          Expected{10, Token::kField, "tier"}, Expected{14, Token::kOperator, "!="},
                          Expected{16, Token::kValue, "web"}, Expected{19, Token::kEndOfInput, ""}));
  EXPECT_THAT(tokens("a.b~=x.y=z w"),
              ElementsAre(Expected{0, Token::kField, "a"}, Expected{1, Token::kSeparator, "."},
                          Expected{2, Token::kField, "b"}, Expected{3, Token::kOperator, "~="},
                          Expected{5, Token::kValue, "x.y=z"}, Expected{11, Token::kField, "w"},
                          Expected{12, Token::kEndOfInput, ""}));
}

TEST(FiltersScanner, QuotesAndIllegalTokens) {
  EXPECT_THAT(tokens(R"("lead q".x~=|a/b|)"),
              ElementsAre(Expected{0, Token::kQuoted, R"("lead q")"}, Expected{8, Token::kSeparator, "."},
                          Expected{9, Token::kField, "x"}, Expected{10, Token::kOperator, "~="},
                          Expected{12, Token::kQuoted, "|a/b|"}, Expected{17, Token::kEndOfInput, ""}));
  EXPECT_THAT(tokens(std::string_view("ab\0cd", 5)),
              ElementsAre(Expected{0, Token::kField, "ab"}, Expected{2, Token::kIllegal, ""},
                          Expected{3, Token::kField, "cd"}, Expected{5, Token::kEndOfInput, ""}));
  EXPECT_THAT(tokens("k.io/key==v"),
              ElementsAre(Expected{0, Token::kField, "k"}, Expected{1, Token::kSeparator, "."},
                          Expected{2, Token::kField, "io"}, Expected{4, Token::kIllegal, "/key==v"},
                          Expected{11, Token::kEndOfInput, ""}));
}

}  // namespace
}  // namespace ctrd::filters
