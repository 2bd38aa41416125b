// filters: containerd's filter language, used by every List call.
//
//   filter    := selector ("," selector)*          -- and
//   selector  := fieldpath [op value]              -- no op: the field is present
//   fieldpath := field ("." field)*                -- fields may be "quoted"
//   op        := "==" | "!=" | "~="                -- ~= is a regular expression (RE2, Go's syntax)
//   value     := "quoted" | bare word              -- ~= also accepts /quoted/ and |quoted|
//
// e.g. `type==io.containerd.grpc.v1`, `labels."a.b"==c,name~=^x`. As in containerd,
// a text has no "or": `|` quotes a regular expression, and alternatives are the
// separate texts given to parse_all. A parse error is InvalidArgument and says
// where it happened, in containerd's words.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::filters {

// Returns the value of the field at `fieldpath`, or nullopt when the object has
// no such field. Objects adapt themselves to filtering with one of these.
using Adaptor = std::function<std::optional<std::string>(const std::vector<std::string>& fieldpath)>;

class Filter {
 public:
  // The empty filter matches everything.
  Filter();
  ~Filter();
  Filter(const Filter&);
  Filter& operator=(const Filter&);
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  bool match(const Adaptor& adaptor) const;
  // True when this filter accepts everything.
  bool empty() const;

  struct Impl;

 private:
  friend errdefs::StatusOr<Filter> parse(std::string_view text);
  friend errdefs::StatusOr<Filter> parse_all(const std::vector<std::string>& texts);
  std::shared_ptr<const Impl> impl_;
};

errdefs::StatusOr<Filter> parse(std::string_view text);
// Any of `texts` may match (containerd's ParseAll); none given matches all.
errdefs::StatusOr<Filter> parse_all(const std::vector<std::string>& texts);

}  // namespace ctrd::filters
