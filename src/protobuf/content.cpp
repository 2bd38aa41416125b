#include "protobuf/content.h"

#include "protobuf/time.h"

namespace ctrd::protobuf::content {

using protobuf::to_timestamp;

namespace api = containerd::services::content::v1;
namespace cs = ctrd::content;
using errdefs::Status;

void to_proto(const cs::Info& i, api::Info* out) {
  out->set_digest(i.digest);
  out->set_size(i.size);
  *out->mutable_created_at() = to_timestamp(i.created_at);
  *out->mutable_updated_at() = to_timestamp(i.updated_at);
  out->mutable_labels()->insert(i.labels.begin(), i.labels.end());
}

void to_proto(const cs::Status& s, api::Status* out) {
  *out->mutable_started_at() = to_timestamp(s.started_at);
  *out->mutable_updated_at() = to_timestamp(s.updated_at);
  out->set_ref(s.ref);
  out->set_offset(s.offset);
  out->set_total(s.total);
  out->set_expected(s.expected);
}

Status check_digest(const std::string& digest) {
  auto s = cs::validate_digest(digest);
  if (!s.ok()) return errdefs::InvalidArgument(digest + ": " + s.message());
  return s;
}

Status WriteSession::handle(const api::WriteContentRequest& req, api::WriteContentResponse& resp,
                            bool& committed) {
  if (!writer_) CTRD_RETURN_IF_ERROR(open(req));
  resp.Clear();
  resp.set_action(req.action());
  CTRD_ASSIGN_OR_RETURN(cs::Status st, writer_->status());
  resp.set_offset(st.offset);

  if (!req.expected().empty()) {
    expected_ = req.expected();
    if (store_->info(expected_).ok()) {
      writer_.reset();
      (void)store_->abort(ref_);
      return errdefs::AlreadyExists("blob with expected digest " + expected_ + " exists");
    }
  }
  if (req.total() > 0) total_ = req.total();

  switch (req.action()) {
    case api::STAT:
      resp.set_digest(writer_->digest());
      *resp.mutable_started_at() = to_timestamp(st.started_at);
      *resp.mutable_updated_at() = to_timestamp(st.updated_at);
      resp.set_total(total_);
      return Status::Ok();
    case api::WRITE:
    case api::COMMIT: {
      if (req.offset() > 0 && req.offset() != st.offset) {
        return errdefs::OutOfRange("write @" + std::to_string(req.offset()) +
                                   " must occur at current offset " + std::to_string(st.offset));
      }
      int64_t offset = st.offset;
      if (req.offset() == 0 && st.offset > 0) {
        CTRD_RETURN_IF_ERROR(writer_->truncate(0));
        offset = 0;
      }
      if (!req.data().empty()) {
        CTRD_RETURN_IF_ERROR(writer_->write(req.data()));
        offset += static_cast<int64_t>(req.data().size());
      }
      resp.set_offset(offset);
      resp.set_digest(writer_->digest());
      if (req.action() == api::COMMIT) {
        CTRD_RETURN_IF_ERROR(writer_->commit(total_, expected_, {req.labels().begin(), req.labels().end()}));
        committed = true;
      }
      return Status::Ok();
    }
    default:
      return errdefs::InvalidArgument("unknown write action " + std::to_string(req.action()));
  }
}

Status WriteSession::open(const api::WriteContentRequest& req) {
  ref_ = req.ref();
  if (ref_.empty()) return errdefs::InvalidArgument("first message must have a reference");
  total_ = req.total();
  expected_ = req.expected();
  CTRD_ASSIGN_OR_RETURN(writer_, store_->writer({.ref = ref_, .total = total_, .expected = expected_}));
  return Status::Ok();
}

}  // namespace ctrd::protobuf::content
