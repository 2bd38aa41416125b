// The gRPC edge of the error model: errdefs::Status <-> grpc::Status, with the
// same codes containerd uses so clients can branch on them.
#pragma once

#include <grpcpp/support/status.h>

#include "errdefs/errdefs.h"

namespace ctrd::errdefs {

grpc::StatusCode to_grpc_code(Code code);
Code from_grpc_code(grpc::StatusCode code);

grpc::Status to_grpc(const Status& status);
Status from_grpc(const grpc::Status& status);

}  // namespace ctrd::errdefs
