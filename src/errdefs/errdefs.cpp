#include "errdefs/errdefs.h"

#include <cerrno>
#include <cstring>

namespace ctrd::errdefs {

std::string quoted(std::string_view value, size_t max_length) {
  std::string out = "\"";
  if (value.size() > max_length) {
    out.append(value.substr(0, max_length)).append("...");
  } else {
    out.append(value);
  }
  return out + "\"";
}

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kUnknown:
      return "unknown";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kNotFound:
      return "not found";
    case Code::kAlreadyExists:
      return "already exists";
    case Code::kFailedPrecondition:
      return "failed precondition";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kNotImplemented:
      return "not implemented";
    case Code::kCanceled:
      return "canceled";
    case Code::kDeadlineExceeded:
      return "deadline exceeded";
    case Code::kResourceExhausted:
      return "resource exhausted";
    case Code::kAborted:
      return "aborted";
    case Code::kOutOfRange:
      return "out of range";
    case Code::kPermissionDenied:
      return "permission denied";
    case Code::kInternal:
      return "internal";
    case Code::kDataLoss:
      return "data loss";
    case Code::kSkip:
      return "skip plugin";
  }
  return "unknown";
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return {code_, std::string(context) + ": " + message_};
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return message_.empty() ? std::string(code_name(code_)) : message_;
}

Status FromErrno(int err, std::string_view context) {
  std::string msg = std::string(context) + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(std::move(msg));
    case EEXIST:
      return AlreadyExists(std::move(msg));
    case EINVAL:
      return InvalidArgument(std::move(msg));
    case EACCES:
    case EPERM:
      return PermissionDenied(std::move(msg));
    case ENOSPC:
      return ResourceExhausted(std::move(msg));
    case EAGAIN:
    case EBUSY:
      return Unavailable(std::move(msg));
    default:
      return Unknown(std::move(msg));
  }
}

}  // namespace ctrd::errdefs
