#include "filters/filters.h"

#include <re2/re2.h>

#include <cstdint>
#include <string>
#include <utility>

#include "filters/scanner.h"

namespace ctrd::filters {

using errdefs::Status;
using errdefs::StatusOr;
using internal::Lexeme;
using internal::Scanner;
using internal::Token;

struct Filter::Impl {
  enum class Operator { kPresent, kEqual, kNotEqual, kMatches };

  struct Selector {
    std::vector<std::string> fieldpath;
    Operator op = Operator::kPresent;
    std::string value;
    std::unique_ptr<const re2::RE2> regexp;  // for kMatches

    bool match(const Adaptor& adaptor) const {
      const std::optional<std::string> field = adaptor ? adaptor(fieldpath) : std::nullopt;
      switch (op) {
        case Operator::kPresent:
          return field.has_value();
        case Operator::kEqual:
          return field.has_value() && *field == value;
        // containerd compares a missing field as "", for both of these.
        case Operator::kNotEqual:
          return field.value_or("") != value;
        case Operator::kMatches:
          return re2::RE2::PartialMatch(field.value_or(""), *regexp);
      }
      return false;
    }
  };
  using Selectors = std::vector<Selector>;  // all must match

  // Never empty: the filter that matches everything has no Impl.
  std::vector<Selectors> alternatives;  // any may match
};

namespace {

using Operator = Filter::Impl::Operator;
using Selector = Filter::Impl::Selector;
using Selectors = Filter::Impl::Selectors;

// Bounds what one client request can make the daemon hold: RE2 may use up to
// max_mem for each compiled expression and its match cache. Real filters use a
// few small expressions; these limits only refuse crafted ones.
constexpr int64_t kRegexpMaxMemory = int64_t{1} << 20;
constexpr int kMaxRegexpsPerFilter = 64;

class Parser {
 public:
  // `regexps_left` is shared by the texts of one parse_all.
  Parser(std::string_view input, int& regexps_left)
      : input_(input), scanner_(input), regexps_left_(regexps_left) {}

  StatusOr<Selectors> parse() {
    Selectors selectors;
    for (;;) {
      CTRD_ASSIGN_OR_RETURN(Selector s, selector());
      selectors.push_back(std::move(s));
      const int32_t next = scanner_.peek();
      if (next == internal::kEndOfInput) return selectors;
      if (next != ',') {
        return error_at(scanner_.peek_position(), "unexpected input: " + rune_text(next));
      }
      scanner_.scan();
    }
  }

 private:
  StatusOr<Selector> selector() {
    Selector s;
    CTRD_ASSIGN_OR_RETURN(s.fieldpath, fieldpath());
    if (const int32_t next = scanner_.peek(); next == ',' || next == internal::kEndOfInput) return s;
    CTRD_ASSIGN_OR_RETURN(s.op, op());
    // Only a regular expression may use the alternative quotes, so that '"' can
    // appear in it unescaped.
    const bool is_regexp = s.op == Operator::kMatches;
    const Lexeme lexeme = scanner_.scan();
    switch (lexeme.token) {
      case Token::kValue:
      case Token::kField:
        s.value = lexeme.text;
        break;
      case Token::kQuoted: {
        CTRD_ASSIGN_OR_RETURN(s.value, unquote(lexeme, is_regexp));
        break;
      }
      case Token::kIllegal:
        return error_at(lexeme.pos, scanner_.error());
      default:
        return error_at(lexeme.pos, "expected value or quoted");
    }
    if (is_regexp) {
      if (--regexps_left_ < 0) {
        return error_at(lexeme.pos, "too many regular expressions (at most " +
                                        std::to_string(kMaxRegexpsPerFilter) + " per filter)");
      }
      re2::RE2::Options options;
      options.set_max_mem(kRegexpMaxMemory);
      options.set_log_errors(false);
      options.set_never_capture(true);
      auto regexp = std::make_unique<const re2::RE2>(s.value, options);
      if (!regexp->ok()) return error_at(lexeme.pos, "invalid regular expression: " + regexp->error());
      s.regexp = std::move(regexp);
    }
    return s;
  }

  StatusOr<std::vector<std::string>> fieldpath() {
    std::vector<std::string> path;
    for (;;) {
      CTRD_ASSIGN_OR_RETURN(std::string f, field());
      path.push_back(std::move(f));
      // Anything but a '.' is for the caller to judge.
      if (scanner_.peek() != '.') return path;
      scanner_.scan();
    }
  }

  StatusOr<std::string> field() {
    const Lexeme lexeme = scanner_.scan();
    switch (lexeme.token) {
      case Token::kField:
        return std::string(lexeme.text);
      case Token::kQuoted:
        return unquote(lexeme, false);
      case Token::kIllegal:
        return error_at(lexeme.pos, scanner_.error());
      default:
        return error_at(lexeme.pos, "expected field or quoted");
    }
  }

  StatusOr<Operator> op() {
    const Lexeme lexeme = scanner_.scan();
    switch (lexeme.token) {
      case Token::kOperator:
        if (lexeme.text == "==") return Operator::kEqual;
        if (lexeme.text == "!=") return Operator::kNotEqual;
        if (lexeme.text == "~=") return Operator::kMatches;
        return error_at(lexeme.pos, "unsupported operator \"" + std::string(lexeme.text) + "\"");
      case Token::kIllegal:
        return error_at(lexeme.pos, scanner_.error());
      default:
        return error_at(lexeme.pos, R"(expected an operator ("=="|"!="|"~="))");
    }
  }

  StatusOr<std::string> unquote(const Lexeme& lexeme, bool allow_alternative_quotes) {
    if (!allow_alternative_quotes && lexeme.text.front() != '"') {
      return error_at(lexeme.pos, "invalid quote encountered");
    }
    std::optional<std::string> text = internal::unquote(lexeme.text);
    if (!text) return error_at(lexeme.pos, "unquoting failed: quote syntax error");
    return std::move(*text);
  }

  static std::string rune_text(int32_t rune) {
    std::string text;
    internal::append_utf8(text, rune);  // kIllegalRune shows as U+FFFD, as in containerd
    return text;
  }

  // containerd's wording: "filters: parse error: [before >|at|< after]: what",
  // or "[input]: what" at the end of the input.
  Status error_at(size_t pos, std::string_view what) const {
    std::string message = "filters: parse error: [";
    if (pos < input_.size()) {
      // Marks the whole character, where containerd marks one byte of it.
      const auto [rune, width] = internal::decode_utf8(input_.substr(pos));
      message.append(input_.substr(0, pos))
          .append(" >|")
          .append(input_.substr(pos, width))
          .append("|< ")
          .append(input_.substr(pos + width));
    } else {
      message.append(input_);
    }
    message.append("]: ").append(what);
    return errdefs::InvalidArgument(std::move(message));
  }

  std::string_view input_;
  Scanner scanner_;
  int& regexps_left_;
};

}  // namespace

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(const Filter&) = default;
Filter& Filter::operator=(const Filter&) = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

bool Filter::match(const Adaptor& adaptor) const {
  if (!impl_) return true;
  for (const Selectors& selectors : impl_->alternatives) {
    bool all = true;
    for (const Selector& s : selectors) {
      if (!s.match(adaptor)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

bool Filter::empty() const { return impl_ == nullptr; }

StatusOr<Filter> parse(std::string_view text) {
  // As in containerd only the empty text matches all; blanks are an error.
  if (text.empty()) return Filter();
  int regexps_left = kMaxRegexpsPerFilter;
  CTRD_ASSIGN_OR_RETURN(Selectors selectors, Parser(text, regexps_left).parse());
  auto impl = std::make_shared<Filter::Impl>();
  impl->alternatives.push_back(std::move(selectors));
  Filter filter;
  filter.impl_ = std::move(impl);
  return filter;
}

StatusOr<Filter> parse_all(const std::vector<std::string>& texts) {
  auto impl = std::make_shared<Filter::Impl>();
  bool matches_all = texts.empty();
  int regexps_left = kMaxRegexpsPerFilter;
  // Every text is parsed, even after one that matches all, so that none with an
  // error is accepted.
  for (const std::string& text : texts) {
    if (text.empty()) {
      matches_all = true;
      continue;
    }
    CTRD_ASSIGN_OR_RETURN(Selectors selectors, Parser(text, regexps_left).parse());
    impl->alternatives.push_back(std::move(selectors));
  }
  Filter filter;
  if (!matches_all) filter.impl_ = std::move(impl);
  return filter;
}

}  // namespace ctrd::filters
