// protobuf/content: containerd's content API protocol, independent
// of how calls arrive — the conversions every content front end needs and
// the Write stream's state machine (stat / write / commit, one response per
// request). ctrd's own front end (callback API) and `ctrd serve-content`
// (the synchronous API) both use it.
#pragma once

#include <github.com/containerd/containerd/api/services/content/v1/content.pb.h>

#include <memory>
#include <string>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::protobuf::content {

void to_proto(const ctrd::content::Info& info, containerd::services::content::v1::Info* out);
void to_proto(const ctrd::content::Status& status, containerd::services::content::v1::Status* out);
// InvalidArgument naming the digest when it is not one.
errdefs::Status check_digest(const std::string& digest);

// One Write stream.
class WriteSession {
 public:
  explicit WriteSession(std::shared_ptr<ctrd::content::Store> store) : store_(std::move(store)) {}

  // Handles `req` into `resp`; `committed` is set when the blob was committed.
  errdefs::Status handle(const containerd::services::content::v1::WriteContentRequest& req,
                         containerd::services::content::v1::WriteContentResponse& resp, bool& committed);
  // Releases the ref before the call's status goes out, so a client that sees
  // the call end (a failed commit, say) can at once reopen or abort it, as
  // with containerd.
  void close() { writer_.reset(); }
  const std::string& ref() const { return ref_; }

 private:
  errdefs::Status open(const containerd::services::content::v1::WriteContentRequest& req);

  std::shared_ptr<ctrd::content::Store> store_;
  std::unique_ptr<ctrd::content::Writer> writer_;
  std::string ref_;
  std::string expected_;
  int64_t total_ = 0;
};

}  // namespace ctrd::protobuf::content
