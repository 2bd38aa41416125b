#include "errdefs/grpc_status.h"

namespace ctrd::errdefs {

grpc::StatusCode to_grpc_code(Code code) {
  switch (code) {
    case Code::kOk:
      return grpc::StatusCode::OK;
    case Code::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case Code::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case Code::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case Code::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case Code::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case Code::kNotImplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case Code::kCanceled:
      return grpc::StatusCode::CANCELLED;
    case Code::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case Code::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case Code::kAborted:
      return grpc::StatusCode::ABORTED;
    case Code::kOutOfRange:
      return grpc::StatusCode::OUT_OF_RANGE;
    case Code::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case Code::kInternal:
      return grpc::StatusCode::INTERNAL;
    case Code::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case Code::kUnknown:
    case Code::kSkip:
      return grpc::StatusCode::UNKNOWN;
  }
  return grpc::StatusCode::UNKNOWN;
}

Code from_grpc_code(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return Code::kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Code::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND:
      return Code::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return Code::kAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Code::kFailedPrecondition;
    case grpc::StatusCode::UNAVAILABLE:
      return Code::kUnavailable;
    case grpc::StatusCode::UNIMPLEMENTED:
      return Code::kNotImplemented;
    case grpc::StatusCode::CANCELLED:
      return Code::kCanceled;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Code::kDeadlineExceeded;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Code::kResourceExhausted;
    case grpc::StatusCode::ABORTED:
      return Code::kAborted;
    case grpc::StatusCode::OUT_OF_RANGE:
      return Code::kOutOfRange;
    case grpc::StatusCode::PERMISSION_DENIED:
      return Code::kPermissionDenied;
    case grpc::StatusCode::INTERNAL:
      return Code::kInternal;
    case grpc::StatusCode::DATA_LOSS:
      return Code::kDataLoss;
    default:
      return Code::kUnknown;
  }
}

grpc::Status to_grpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return {to_grpc_code(status.code()), status.message()};
}

Status from_grpc(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  return {from_grpc_code(status.error_code()), status.error_message()};
}

}  // namespace ctrd::errdefs
