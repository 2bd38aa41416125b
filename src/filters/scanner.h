// Private to src/filters: the tokenizer behind parse(), kept in its own header so
// its token stream can be tested directly.
//
// It follows containerd's scanner quirk for quirk, because which inputs are
// accepted, and where an error is reported, is part of the API clients see:
// positions are byte offsets, a bare value runs up to a comma or space and may
// contain '=', '.', '|' and '"', a quote is only closed by its own character, and
// the first problem seen is the one reported even when a later one stops the scan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ctrd::filters::internal {

// What next() and peek() return when there is no code point to return.
inline constexpr int32_t kEndOfInput = -1;
inline constexpr int32_t kIllegalRune = -2;

enum class Token {
  kEndOfInput,
  kQuoted,     // text keeps its quotes; unquote() decodes it
  kValue,      // a bare value, only right after an operator
  kField,      // [A-Za-z0-9_]+
  kSeparator,  // "," or "."
  kOperator,   // any run of '=', '!', '~'; the parser decides which are valid
  kIllegal,    // see Scanner::error()
  kOther,      // a single code point no token starts with; see Lexeme::rune
};

struct Lexeme {
  size_t pos = 0;  // byte offset of the token's first character
  Token token = Token::kEndOfInput;
  std::string_view text;
  int32_t rune = kEndOfInput;  // the code point, for kOther
};

class Scanner {
 public:
  explicit Scanner(std::string_view input) : input_(input) {}

  Lexeme scan();
  // The next code point (or kEndOfInput / kIllegalRune), not consumed; spaces
  // are not skipped. Like containerd's, it may record an error().
  int32_t peek();
  // Where the code point peek() returns starts.
  size_t peek_position() const { return next_; }
  // Why the last kIllegal token (or kIllegalRune) was produced.
  const std::string& error() const { return error_; }

 private:
  int32_t next();
  void record_error(std::string_view message);
  bool scan_quoted(int32_t quote);
  // Consumes an escape after its backslash; returns the code point after it and
  // whether the escape was well formed.
  std::pair<int32_t, bool> scan_escape(int32_t quote);
  std::pair<int32_t, bool> scan_digits(int32_t ch, int base, int count);

  std::string_view input_;
  size_t start_ = 0;  // where the code point last returned by next() starts
  size_t next_ = 0;   // where the one after it starts
  bool expecting_value_ = false;
  std::string error_;
};

// Decodes a kQuoted token's text ("...", /.../ or |...|) with Go's string
// escapes, where only the enclosing quote character may be escaped. nullopt when
// malformed (e.g. an octal escape above \377 or \U beyond U+10FFFF).
std::optional<std::string> unquote(std::string_view quoted);

// Decodes the UTF-8 sequence at the front of `text` like Go: an invalid or
// truncated sequence yields {U+FFFD, 1}; empty text yields {kEndOfInput, 0}.
std::pair<int32_t, size_t> decode_utf8(std::string_view text);
void append_utf8(std::string& out, int32_t rune);

}  // namespace ctrd::filters::internal
