#include <cerrno>

#include <gtest/gtest.h>

#include "errdefs/errdefs.h"
#include "errdefs/grpc_status.h"

namespace ctrd::errdefs {
namespace {

TEST(Errdefs, CodesMapToContainerdGrpcCodes) {
  EXPECT_EQ(to_grpc(NotFound("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(to_grpc(AlreadyExists("x")).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(to_grpc(FailedPrecondition("x")).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(to_grpc(InvalidArgument("x")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(to_grpc(Unavailable("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(to_grpc(NotImplemented("x")).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(to_grpc(Status::Ok()).ok());
  EXPECT_EQ(to_grpc(NotFound("blob missing")).error_message(), "blob missing");
}

TEST(Errdefs, RoundTripThroughGrpc) {
  for (Code c : {Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists, Code::kFailedPrecondition,
                 Code::kUnavailable, Code::kAborted, Code::kOutOfRange, Code::kDataLoss}) {
    Status s(c, "m");
    EXPECT_EQ(from_grpc(to_grpc(s)), s) << code_name(c);
  }
}

TEST(Errdefs, FromErrnoKeepsContextAndKind) {
  Status s = FromErrno(ENOENT, "open /x");
  EXPECT_TRUE(IsNotFound(s));
  EXPECT_NE(s.message().find("open /x"), std::string::npos);
  EXPECT_TRUE(IsAlreadyExists(FromErrno(EEXIST, "mkdir")));
}

TEST(Errdefs, WithContextPrefixesMessageKeepsCode) {
  Status s = NotFound("digest").with_context("content");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "content: digest");
  EXPECT_TRUE(Status::Ok().with_context("x").ok());
}

StatusOr<int> half(int v) {
  if (v % 2 != 0) return InvalidArgument("odd");
  return v / 2;
}

Status quarter(int v, int& out) {
  CTRD_ASSIGN_OR_RETURN(int h, half(v));
  CTRD_ASSIGN_OR_RETURN(out, half(h));
  return Status::Ok();
}

TEST(Errdefs, StatusOrAndMacros) {
  int out = 0;
  EXPECT_TRUE(quarter(8, out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(quarter(6, out).code(), Code::kInvalidArgument);
  StatusOr<int> bad = half(3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd");
}

}  // namespace
}  // namespace ctrd::errdefs
