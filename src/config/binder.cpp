#include "config/binder.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <set>

namespace ctrd::config {
namespace {

using errdefs::InvalidArgument;
using errdefs::Status;

std::string_view node_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

std::string join_path(std::string_view prefix, std::string_view key) {
  std::string k = path_key(key);
  if (prefix.empty()) return k;
  return std::string(prefix) + "." + k;
}

class Decoder final : public Binder {
 public:
  Decoder(const toml::table& table, std::string path, DecodeReport& report)
      : table_(table), path_(std::move(path)), report_(report) {}

  void field(std::string_view key, bool& value) override {
    if (auto* n = find(key)) {
      if (auto v = n->value<bool>(); v && n->is_boolean())
        value = *v;
      else
        wrong_type(key, *n, "boolean");
    }
  }
  void field(std::string_view key, int64_t& value) override {
    if (auto* n = find(key)) {
      if (n->is_integer())
        value = *n->value<int64_t>();
      else
        wrong_type(key, *n, "integer");
    }
  }
  void field(std::string_view key, int32_t& value) override { integer(key, value); }
  void field(std::string_view key, uint32_t& value) override { integer(key, value); }
  void field(std::string_view key, double& value) override {
    if (auto* n = find(key)) {
      if (n->is_number())
        value = *n->value<double>();
      else
        wrong_type(key, *n, "number");
    }
  }
  void field(std::string_view key, std::string& value) override {
    if (auto* n = find(key)) {
      if (n->is_string())
        value = *n->value<std::string>();
      else
        wrong_type(key, *n, "string");
    }
  }
  void field(std::string_view key, Duration& value) override {
    auto* n = find(key);
    if (n == nullptr) return;
    if (n->is_integer()) {  // containerd accepts plain integers as nanoseconds
      value.value = std::chrono::nanoseconds(*n->value<int64_t>());
      return;
    }
    if (!n->is_string()) return wrong_type(key, *n, "duration string");
    auto parsed = parse_duration(*n->value<std::string>());
    if (!parsed.ok()) {
      fail(InvalidArgument(join_path(path_, key) + ": " + parsed.status().message()));
      return;
    }
    value.value = *parsed;
  }
  void field(std::string_view key, std::vector<std::string>& value) override {
    auto* n = find(key);
    if (n == nullptr) return;
    const auto* arr = n->as_array();
    if (arr == nullptr) return wrong_type(key, *n, "array of strings");
    std::vector<std::string> out;
    for (const auto& el : *arr) {
      if (!el.is_string()) return wrong_type(key, el, "array of strings");
      out.push_back(*el.value<std::string>());
    }
    value = std::move(out);
  }
  void field(std::string_view key, std::map<std::string, std::string>& value) override {
    auto* n = find(key);
    if (n == nullptr) return;
    const auto* tbl = n->as_table();
    if (tbl == nullptr) return wrong_type(key, *n, "table of strings");
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : *tbl) {
      if (!v.is_string()) {
        fail(InvalidArgument(join_path(join_path(path_, key), k.str()) + ": expected string, got " +
                             std::string(node_type_name(v))));
        return;
      }
      out.emplace(std::string(k.str()), *v.value<std::string>());
    }
    value = std::move(out);
  }
  void section(std::string_view key, const std::function<void(Binder&)>& bind_fields) override {
    auto* n = find(key);
    if (n == nullptr) return;
    const auto* tbl = n->as_table();
    if (tbl == nullptr) return wrong_type(key, *n, "table");
    Decoder nested(*tbl, join_path(path_, key), report_);
    bind_fields(nested);
    nested.collect_unknown();
  }
  void section_map(std::string_view key, const std::function<std::vector<std::string>()>& /*held*/,
                   const std::function<void(const std::string& name, Binder&)>& bind_entry) override {
    auto* n = find(key);
    if (n == nullptr) return;
    const auto* tbl = n->as_table();
    if (tbl == nullptr) return wrong_type(key, *n, "table");
    const std::string path = join_path(path_, key);
    for (const auto& [name, entry] : *tbl) {
      const auto* entry_table = entry.as_table();
      if (entry_table == nullptr) {
        fail(InvalidArgument(join_path(path, name.str()) + ": expected table, got " +
                             std::string(node_type_name(entry))));
        return;
      }
      Decoder nested(*entry_table, join_path(path, name.str()), report_);
      bind_entry(std::string(name.str()), nested);
      nested.collect_unknown();
    }
  }

  void collect_unknown() {
    for (const auto& [k, v] : table_) {
      if (!seen_.contains(std::string(k.str()))) report_.unknown_keys.push_back(join_path(path_, k.str()));
    }
  }

 private:
  const toml::node* find(std::string_view key) {
    seen_.emplace(key);
    return table_.get(key);
  }

  template <typename Int>
  void integer(std::string_view key, Int& value) {
    auto* n = find(key);
    if (n == nullptr) return;
    if (!n->is_integer()) return wrong_type(key, *n, "integer");
    int64_t v = *n->value<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
        v > static_cast<int64_t>(std::numeric_limits<Int>::max())) {
      fail(InvalidArgument(join_path(path_, key) + ": " + std::to_string(v) + " is out of range"));
      return;
    }
    value = static_cast<Int>(v);
  }

  void wrong_type(std::string_view key, const toml::node& n, std::string_view want) {
    std::string where;
    if (n.source().begin) {
      where = " (line " + std::to_string(n.source().begin.line) + ", column " +
              std::to_string(n.source().begin.column) + ")";
    }
    fail(InvalidArgument(join_path(path_, key) + ": expected " + std::string(want) + ", got " +
                         std::string(node_type_name(n)) + where));
  }

  void fail(Status s) {
    if (report_.error.ok()) report_.error = std::move(s);
  }

  const toml::table& table_;
  std::string path_;
  DecodeReport& report_;
  std::set<std::string, std::less<>> seen_;
};

class Encoder final : public Binder {
 public:
  explicit Encoder(toml::table& out) : out_(out) {}
  void field(std::string_view key, bool& value) override { out_.insert_or_assign(key, value); }
  void field(std::string_view key, int64_t& value) override { out_.insert_or_assign(key, value); }
  void field(std::string_view key, int32_t& value) override {
    out_.insert_or_assign(key, static_cast<int64_t>(value));
  }
  void field(std::string_view key, uint32_t& value) override {
    out_.insert_or_assign(key, static_cast<int64_t>(value));
  }
  void field(std::string_view key, double& value) override { out_.insert_or_assign(key, value); }
  void field(std::string_view key, std::string& value) override { out_.insert_or_assign(key, value); }
  void field(std::string_view key, Duration& value) override {
    out_.insert_or_assign(key, format_duration(value.value));
  }
  void field(std::string_view key, std::vector<std::string>& value) override {
    toml::array arr;
    for (const auto& s : value) arr.push_back(s);
    out_.insert_or_assign(key, std::move(arr));
  }
  void field(std::string_view key, std::map<std::string, std::string>& value) override {
    toml::table tbl;
    for (const auto& [k, v] : value) tbl.insert_or_assign(k, v);
    out_.insert_or_assign(key, std::move(tbl));
  }
  void section(std::string_view key, const std::function<void(Binder&)>& bind_fields) override {
    toml::table tbl;
    Encoder nested(tbl);
    bind_fields(nested);
    out_.insert_or_assign(key, std::move(tbl));
  }
  void section_map(std::string_view key, const std::function<std::vector<std::string>()>& held,
                   const std::function<void(const std::string& name, Binder&)>& bind_entry) override {
    toml::table tbl;
    for (const std::string& name : held()) {
      toml::table entry;
      Encoder nested(entry);
      bind_entry(name, nested);
      tbl.insert_or_assign(name, std::move(entry));
    }
    out_.insert_or_assign(key, std::move(tbl));
  }

 private:
  toml::table& out_;
};

}  // namespace

std::string path_key(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) bare = false;
  }
  if (bare) return std::string(key);
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

DecodeReport decode(const toml::table& table, std::string_view path,
                    const std::function<void(Binder&)>& bind_fields) {
  DecodeReport report;
  Decoder d(table, std::string(path), report);
  bind_fields(d);
  d.collect_unknown();
  return report;
}

std::unique_ptr<toml::table> encode(const std::function<void(Binder&)>& bind_fields) {
  auto out = std::make_unique<toml::table>();
  Encoder e(*out);
  bind_fields(e);
  return out;
}

errdefs::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  // Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+, or "0".
  const std::string original(text);
  auto bad = [&original] { return InvalidArgument("invalid duration \"" + original + "\""); };
  if (text.empty()) return bad();
  bool negative = false;
  if (text.front() == '-' || text.front() == '+') {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return bad();
  long double total = 0;
  while (!text.empty()) {
    size_t i = 0;
    long double whole = 0;
    bool digits = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      whole = whole * 10 + (text[i] - '0');
      ++i;
      digits = true;
    }
    long double frac = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        frac += (text[i] - '0') * scale;
        scale /= 10;
        ++i;
        digits = true;
      }
    }
    if (!digits) return bad();
    size_t u = i;
    while (u < text.size() && !std::isdigit(static_cast<unsigned char>(text[u])) && text[u] != '.') ++u;
    std::string_view unit = text.substr(i, u - i);
    long double mult = 0;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
      mult = 1e3L;
    else if (unit == "ms")
      mult = 1e6L;
    else if (unit == "s")
      mult = 1e9L;
    else if (unit == "m")
      mult = 60e9L;
    else if (unit == "h")
      mult = 3600e9L;
    else if (unit.empty())
      return InvalidArgument("missing unit in duration \"" + original + "\"");
    else
      return InvalidArgument("unknown unit \"" + std::string(unit) + "\" in duration \"" + original + "\"");
    total += (whole + frac) * mult;
    text.remove_prefix(u);
  }
  if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgument("invalid duration \"" + original + "\": out of range");
  }
  auto ns = static_cast<int64_t>(std::llround(total));
  return std::chrono::nanoseconds(negative ? -ns : ns);
}

std::string format_duration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  auto frac = [](uint64_t v, uint64_t unit) {
    std::string s = std::to_string(v / unit);
    uint64_t rem = v % unit;
    if (rem != 0) {
      std::string r = std::to_string(rem + unit).substr(1);
      while (!r.empty() && r.back() == '0') r.pop_back();
      s += "." + r;
    }
    return s;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + frac(u, 1000) + "µs";
  if (u < 1000000000) return sign + frac(u, 1000000) + "ms";
  std::string out = sign;
  uint64_t h = u / 3600000000000ULL;
  u %= 3600000000000ULL;
  uint64_t m = u / 60000000000ULL;
  u %= 60000000000ULL;
  if (h) out += std::to_string(h) + "h";
  if (h || m) out += std::to_string(m) + "m";
  out += frac(u, 1000000000ULL) + "s";
  return out;
}

}  // namespace ctrd::config
