#include "filters/scanner.h"

namespace ctrd::filters::internal {
namespace {

constexpr int32_t kReplacementCharacter = 0xFFFD;
constexpr int32_t kMaxCodePoint = 0x10FFFF;

bool in_range(int32_t r, int32_t lo, int32_t hi) { return r >= lo && r <= hi; }

// Go's unicode.IsSpace: Latin-1 spaces plus the White_Space property.
bool is_space(int32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return in_range(r, 0x2000, 0x200A);
  }
}

// Go's unicode.IsGraphic (letters, marks, numbers, punctuation, symbols and
// spaces). Without Unicode tables at hand this rejects the controls, format
// characters, line/paragraph separators, surrogates, private use areas,
// noncharacters and the unassigned planes; an unassigned code point inside an
// assigned block counts as graphic here, where Go would say no.
bool is_graphic(int32_t r) {
  if (r < 0x20 || r == 0x7F || in_range(r, 0x80, 0x9F)) return false;
  if (r < 0x7F) return true;
  constexpr std::pair<int32_t, int32_t> kNotGraphic[] = {
      {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},    {0x06DD, 0x06DD},   {0x070F, 0x070F},
      {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},    {0x200B, 0x200F},   {0x2028, 0x202E},
      {0x2060, 0x2064},   {0x2066, 0x206F},   {0xD800, 0xF8FF},    {0xFDD0, 0xFDEF},   {0xFEFF, 0xFEFF},
      {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},  {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3},
      {0x1D173, 0x1D17A}, {0x323B0, 0xE00FF}, {0xE01F0, 0x10FFFF},
  };
  for (const auto& [lo, hi] : kNotGraphic) {
    if (in_range(r, lo, hi)) return false;
  }
  // U+xFFFE and U+xFFFF are noncharacters in every plane.
  return (r & 0xFFFE) != 0xFFFE;
}

bool is_field_rune(int32_t r) {
  return r == '_' || in_range(r, 'A', 'Z') || in_range(r, 'a', 'z') || in_range(r, '0', '9');
}

bool is_operator_rune(int32_t r) { return r == '=' || r == '!' || r == '~'; }

// '/' and '|' let a regular expression hold '"' without escaping it.
bool is_quote_rune(int32_t r) { return r == '"' || r == '/' || r == '|'; }

bool is_separator_rune(int32_t r) { return r == ',' || r == '.'; }

bool is_value_rune(int32_t r) { return r != ',' && !is_space(r) && is_graphic(r); }

int digit_value(int32_t r) {
  if (in_range(r, '0', '9')) return r - '0';
  if (in_range(r, 'a', 'f')) return r - 'a' + 10;
  if (in_range(r, 'A', 'F')) return r - 'A' + 10;
  return 16;  // not a digit in any base used here
}

}  // namespace

std::pair<int32_t, size_t> decode_utf8(std::string_view text) {
  if (text.empty()) return {kEndOfInput, 0};
  const auto byte = [&text](size_t i) { return static_cast<int32_t>(static_cast<unsigned char>(text[i])); };
  const int32_t lead = byte(0);
  if (lead < 0x80) return {lead, 1};
  constexpr std::pair<int32_t, size_t> kInvalid{kReplacementCharacter, 1};
  // The second byte's range excludes overlong forms, surrogates and code points
  // beyond U+10FFFF, as Go's decoder does.
  size_t length = 0;
  int32_t second_lo = 0x80;
  int32_t second_hi = 0xBF;
  int32_t value = 0;
  if (in_range(lead, 0xC2, 0xDF)) {
    length = 2;
    value = lead & 0x1F;
  } else if (in_range(lead, 0xE0, 0xEF)) {
    length = 3;
    value = lead & 0x0F;
    if (lead == 0xE0) second_lo = 0xA0;
    if (lead == 0xED) second_hi = 0x9F;
  } else if (in_range(lead, 0xF0, 0xF4)) {
    length = 4;
    value = lead & 0x07;
    if (lead == 0xF0) second_lo = 0x90;
    if (lead == 0xF4) second_hi = 0x8F;
  } else {
    return kInvalid;
  }
  if (text.size() < length || !in_range(byte(1), second_lo, second_hi)) return kInvalid;
  for (size_t i = 1; i < length; ++i) {
    if (!in_range(byte(i), 0x80, 0xBF)) return kInvalid;
    value = (value << 6) | (byte(i) & 0x3F);
  }
  return {value, length};
}

void append_utf8(std::string& out, int32_t rune) {
  if (rune < 0 || rune > kMaxCodePoint || in_range(rune, 0xD800, 0xDFFF)) rune = kReplacementCharacter;
  const auto put = [&out](int32_t b) { out.push_back(static_cast<char>(b)); };
  if (rune < 0x80) {
    put(rune);
  } else if (rune < 0x800) {
    put(0xC0 | (rune >> 6));
    put(0x80 | (rune & 0x3F));
  } else if (rune < 0x10000) {
    put(0xE0 | (rune >> 12));
    put(0x80 | ((rune >> 6) & 0x3F));
    put(0x80 | (rune & 0x3F));
  } else {
    put(0xF0 | (rune >> 18));
    put(0x80 | ((rune >> 12) & 0x3F));
    put(0x80 | ((rune >> 6) & 0x3F));
    put(0x80 | (rune & 0x3F));
  }
}

void Scanner::record_error(std::string_view message) {
  if (error_.empty()) error_ = message;
}

int32_t Scanner::next() {
  if (start_ >= input_.size()) return kEndOfInput;
  start_ = next_;
  const auto [rune, width] = decode_utf8(input_.substr(next_));
  next_ += width;
  if (width == 0) return kEndOfInput;
  // A literal U+FFFD is refused too: containerd cannot tell it from a bad byte.
  if (rune == kReplacementCharacter) {
    record_error("rune error");
    return kIllegalRune;
  }
  if (rune == 0) {
    record_error("unexpected null");
    return kIllegalRune;
  }
  return rune;
}

int32_t Scanner::peek() {
  const size_t start = start_;
  const size_t next = next_;
  const int32_t rune = this->next();
  start_ = start;
  next_ = next;
  return rune;
}

Lexeme Scanner::scan() {
  int32_t ch = next();
  while (ch >= 0 && is_space(ch)) ch = next();
  const size_t pos = start_;
  const auto lexeme = [&](Token token) { return Lexeme{pos, token, input_.substr(pos, next_ - pos), ch}; };

  if (ch == kEndOfInput) return {pos, Token::kEndOfInput, {}, ch};
  if (ch == kIllegalRune) return {pos, Token::kIllegal, {}, ch};
  if (is_quote_rune(ch)) return lexeme(scan_quoted(ch) ? Token::kQuoted : Token::kIllegal);
  if (is_separator_rune(ch)) {
    expecting_value_ = false;
    return lexeme(Token::kSeparator);
  }
  if (is_operator_rune(ch)) {
    while (is_operator_rune(peek())) next();
    expecting_value_ = true;
    return lexeme(Token::kOperator);
  }
  // After an operator anything that is not a quote, separator or operator starts
  // a value, even a character that could not continue one.
  if (expecting_value_) {
    while (is_value_rune(peek())) next();
    expecting_value_ = false;
    return lexeme(Token::kValue);
  }
  if (is_field_rune(ch)) {
    while (is_field_rune(peek())) next();
    return lexeme(Token::kField);
  }
  return {pos, Token::kOther, {}, ch};
}

bool Scanner::scan_quoted(int32_t quote) {
  bool well_formed = true;
  int32_t ch = next();
  while (ch != quote) {
    if (ch == '\n' || ch < 0) {
      record_error("quoted literal not terminated");
      return false;
    }
    if (ch == '\\') {
      const auto [after, legal] = scan_escape(quote);
      ch = after;
      well_formed = well_formed && legal;
    } else {
      ch = next();
    }
  }
  return well_formed;
}

std::pair<int32_t, bool> Scanner::scan_escape(int32_t quote) {
  const int32_t ch = next();
  switch (ch) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\':
      return {next(), true};
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
      return scan_digits(ch, 8, 3);
    case 'x':
      return scan_digits(next(), 16, 2);
    case 'u':
      return scan_digits(next(), 16, 4);
    case 'U':
      return scan_digits(next(), 16, 8);
    default:
      if (ch == quote) return {next(), true};
      record_error("illegal escape sequence");
      // The character after the backslash is not consumed: it may end the quote.
      return {ch, false};
  }
}

std::pair<int32_t, bool> Scanner::scan_digits(int32_t ch, int base, int count) {
  for (; count > 0 && digit_value(ch) < base; --count) ch = next();
  if (count > 0) {
    record_error("illegal numeric escape sequence");
    return {ch, false};
  }
  return {ch, true};
}

std::optional<std::string> unquote(std::string_view quoted) {
  if (quoted.size() < 2 || quoted.front() != quoted.back() || !is_quote_rune(quoted.front())) {
    return std::nullopt;
  }
  const char quote = quoted.front();
  const std::string_view body = quoted.substr(1, quoted.size() - 2);
  if (body.find('\n') != std::string_view::npos) return std::nullopt;

  std::string out;
  out.reserve(body.size());
  size_t i = 0;
  // Reads `count` digits of `base` at i into `value`; false when there are not enough.
  const auto read_digits = [&](size_t count, int base, int64_t& value) {
    if (body.size() - i < count) return false;
    value = 0;
    for (size_t end = i + count; i < end; ++i) {
      const int digit = digit_value(static_cast<unsigned char>(body[i]));
      if (digit >= base) return false;
      value = value * base + digit;
    }
    return true;
  };
  while (i < body.size()) {
    const char c = body[i];
    if (c == quote) return std::nullopt;
    if (c != '\\') {
      out.push_back(c);  // the scanner has already refused malformed UTF-8
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) return std::nullopt;
    const char escape = body[i + 1];
    i += 2;
    int64_t value = 0;  // wide enough for eight hex digits
    switch (escape) {
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case 'x':
        // A single byte, which need not be valid UTF-8.
        if (!read_digits(2, 16, value)) return std::nullopt;
        out.push_back(static_cast<char>(value));
        break;
      case 'u':
      case 'U':
        if (!read_digits(escape == 'u' ? 4 : 8, 16, value) || value > kMaxCodePoint) {
          return std::nullopt;
        }
        append_utf8(out, static_cast<int32_t>(value));
        break;
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7':
        --i;  // the first digit is part of the number
        if (!read_digits(3, 8, value) || value > 0xFF) return std::nullopt;
        out.push_back(static_cast<char>(value));
        break;
      default:
        if (escape != quote) return std::nullopt;
        out.push_back(escape);
        break;
    }
  }
  return out;
}

}  // namespace ctrd::filters::internal
