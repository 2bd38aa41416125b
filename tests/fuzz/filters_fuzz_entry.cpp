#include "filters_fuzz_entry.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filters.h"

namespace ctrd::filters::fuzz {
namespace {

struct Object {
  std::map<std::string, std::string> fields;  // top-level fields by name
  std::map<std::string, std::string> labels;
};

// Objects with the kinds of values filters meet: empty, punctuated, with spaces
// and commas, non-ASCII, bytes that are not UTF-8, and long.
const std::vector<Object>& objects() {
  static const std::vector<Object> all = {
      {{{"name", "redis"}, {"id", "a1"}}, {{"env", "prod"}, {"a.b", "c"}}},
      {{{"name", ""}}, {{"", ""}}},
      {{{"name", "too complex, yo"}, {"type", "io.containerd.grpc.v1"}}, {{"more complex label", "x"}}},
      {{{"name", "牛牛"}, {"topic", "/tasks/exit"}}, {{"quote \\ and \"", "\xff\xfe"}}},
      {{{"name", std::string(300, 'a') + "|b"}}, {{"env", std::string(1, '\0')}}},
  };
  return all;
}

[[noreturn]] void fail(std::string_view what, std::string_view text) {
  std::fprintf(stderr, "filters fuzz invariant broken: %.*s\ninput: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(text.size()), text.data());
  std::abort();
}

Adaptor adapt(const Object& object, std::string_view text) {
  return [&object, text](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) fail("the parser produced an empty field path", text);
    if (path[0] == "labels") {
      std::string key;
      for (size_t i = 1; i < path.size(); ++i) key += (i > 1 ? "." : "") + path[i];
      if (auto it = object.labels.find(key); it != object.labels.end()) return it->second;
      return std::nullopt;
    }
    if (path.size() != 1) return std::nullopt;
    if (auto it = object.fields.find(path[0]); it != object.fields.end()) return it->second;
    return std::nullopt;
  };
}

std::vector<bool> matches(const Filter& filter, std::string_view text) {
  std::vector<bool> out;
  for (const Object& object : objects()) out.push_back(filter.match(adapt(object, text)));
  // With no adaptor at all no field is present; that must not crash either.
  out.push_back(filter.match(Adaptor()));
  return out;
}

void check_error(const errdefs::Status& status, std::string_view text) {
  if (status.code() != errdefs::Code::kInvalidArgument) fail("a parse error is not InvalidArgument", text);
  if (!status.message().starts_with("filters: parse error: ["))
    fail("a parse error does not say where", text);
}

// Returns the matches of `text` when it parses.
std::optional<std::vector<bool>> check_text(std::string_view text) {
  auto filter = parse(text);
  auto alone = parse_all({std::string(text)});
  if (filter.ok() != alone.ok()) fail("parse and parse_all disagree on validity", text);
  if (!filter.ok()) {
    check_error(filter.status(), text);
    if (alone.status() != filter.status()) fail("parse and parse_all give different errors", text);
    return std::nullopt;
  }
  if (filter->empty() != text.empty()) fail("only the empty text may match everything", text);
  const std::vector<bool> result = matches(*filter, text);
  if (filter->empty() && result != std::vector<bool>(result.size(), true))
    fail("an empty filter refused", text);
  if (matches(*alone, text) != result) fail("parse_all of one text matches differently", text);
  const Filter copy = *filter;
  if (matches(copy, text) != result) fail("a copy matches differently", text);
  return result;
}

}  // namespace

int run_one_input(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_text(input);

  // Each line is also one text of a parse_all, which must match what any line does.
  std::vector<std::string> lines;
  for (size_t start = 0; start <= input.size();) {
    size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    lines.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  std::optional<std::vector<bool>> any;
  bool all_parse = true;
  for (const std::string& line : lines) {
    auto result = check_text(line);
    if (!result) {
      all_parse = false;
      continue;
    }
    if (!any) any = std::vector<bool>(result->size(), false);
    for (size_t i = 0; i < result->size(); ++i) (*any)[i] = (*any)[i] || (*result)[i];
  }
  auto combined = parse_all(lines);
  if (combined.ok() != all_parse) fail("parse_all accepts differently from its texts", input);
  if (!combined.ok()) {
    check_error(combined.status(), input);
    return 0;
  }
  if (matches(*combined, input) != *any) fail("parse_all is not the or of its texts", input);
  return 0;
}

}  // namespace ctrd::filters::fuzz
