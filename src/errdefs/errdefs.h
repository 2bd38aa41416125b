// errdefs: ctrd's one error model.
//
// Every module returns a Status (or StatusOr<T>) whose Code is one of the kinds
// containerd clients branch on (NotFound, AlreadyExists, ...). The gRPC edge maps
// codes to grpc::StatusCode (see grpc_status.h); nothing else in ctrd needs gRPC
// to report an error. No exceptions cross module boundaries.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ctrd::errdefs {

enum class Code {
  kOk = 0,
  kUnknown,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kUnavailable,
  kNotImplemented,
  kCanceled,
  kDeadlineExceeded,
  kResourceExhausted,
  kAborted,
  kOutOfRange,
  kPermissionDenied,
  kInternal,
  kDataLoss,
  // A plugin that does not apply on this host (e.g. btrfs on ext4). Shown as
  // status "skip" by introspection, never sent to a client as such.
  kSkip,
};

std::string_view code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with context, keeping the code: "open db: not found".
  Status with_context(std::string_view context) const;

  // "not found: <message>" style rendering for logs.
  std::string to_string() const;

  bool operator==(const Status& other) const = default;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status Unknown(std::string m) { return {Code::kUnknown, std::move(m)}; }
inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status NotImplemented(std::string m) { return {Code::kNotImplemented, std::move(m)}; }
inline Status Canceled(std::string m) { return {Code::kCanceled, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status DataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }
inline Status Skip(std::string m) { return {Code::kSkip, std::move(m)}; }

// Status from errno, with context: "open /x: No such file or directory" as NotFound, etc.
Status FromErrno(int err, std::string_view context);

inline bool IsNotFound(const Status& s) { return s.code() == Code::kNotFound; }
inline bool IsAlreadyExists(const Status& s) { return s.code() == Code::kAlreadyExists; }
inline bool IsSkip(const Status& s) { return s.code() == Code::kSkip; }

// `value` in double quotes, for a message. Values come from clients: one over
// `max_length` characters is cut there and ends in "...", so messages stay small.
std::string quoted(std::string_view value, size_t max_length = 100);

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "StatusOr needs a value or an error");
    if (status_.ok()) status_ = Internal("StatusOr constructed from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ctrd::errdefs

// Early return on error, for Status-returning functions.
#define CTRD_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::ctrd::errdefs::Status ctrd_status_ = (expr); \
    if (!ctrd_status_.ok()) return ctrd_status_;   \
  } while (false)

#define CTRD_CONCAT_INNER_(a, b) a##b
#define CTRD_CONCAT_(a, b) CTRD_CONCAT_INNER_(a, b)
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` may be a declaration.
#define CTRD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
// `CTRD_ASSIGN_OR_RETURN(auto x, f());`
#define CTRD_ASSIGN_OR_RETURN(lhs, expr) \
  CTRD_ASSIGN_OR_RETURN_IMPL_(CTRD_CONCAT_(ctrd_statusor_, __LINE__), lhs, expr)
// NOLINTEND(bugprone-macro-parentheses)
