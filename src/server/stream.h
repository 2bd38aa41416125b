// server/stream.h: server-streaming replies that are known in full before the
// first write (List calls): the messages are written one after the other
// without holding a thread, and an error before the stream starts finishes it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>

#include "errdefs/grpc_status.h"

namespace ctrd::server {

template <typename Message>
class ListWriter final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit ListWriter(std::deque<Message> messages) : messages_(std::move(messages)) { next(); }
  void OnWriteDone(bool ok) override {
    if (!ok) return this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    messages_.pop_front();
    next();
  }
  void OnDone() override { delete this; }

 private:
  void next() {
    if (messages_.empty()) return this->Finish(grpc::Status::OK);
    this->StartWrite(&messages_.front());
  }
  std::deque<Message> messages_;
};

template <typename Message>
grpc::ServerWriteReactor<Message>* failed_stream(const errdefs::Status& s) {
  struct Failed final : grpc::ServerWriteReactor<Message> {
    explicit Failed(const grpc::Status& st) { this->Finish(st); }
    void OnDone() override { delete this; }
  };
  return new Failed(errdefs::to_grpc(s));
}

}  // namespace ctrd::server
