// server/stream.h: server-streaming replies without a thread held per call —
// replies known in full before the first write (List calls), and replies fed
// by a queue someone else fills (event subscriptions) — and an error before
// the stream starts.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

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

// Where a QueueWriter's messages come from.
template <typename Message>
struct QueueFeed {
  // Fills the next queued message; false when none is queued now.
  std::function<bool(Message*)> next;
  // Set once nothing more will come: the status the call ends with.
  std::function<std::optional<errdefs::Status>()> closed;
  // Ends the subscription (called when the call is cancelled or done; twice is fine).
  std::function<void()> unsubscribe;
};

// Streams a subscription to one client: woken by the source (waker(), from
// any thread, when it queues a message or closes) and by gRPC (write done,
// cancel). With `announce` the response headers go first, so the client
// knows it is subscribed once it has them. Owns itself; deleted in OnDone.
//   auto* writer = new QueueWriter<M>(feed, announce);
//   subscription->set_notify(writer->waker());
//   writer->start();
template <typename Message>
class QueueWriter final : public grpc::ServerWriteReactor<Message> {
 public:
  QueueWriter(QueueFeed<Message> feed, bool announce)
      : feed_(std::move(feed)), guard_(std::make_shared<Guard>()), headers_sent_(!announce) {
    guard_->writer = this;
  }

  std::function<void()> waker() const {
    return [weak = std::weak_ptr<Guard>(guard_)] {
      if (auto g = weak.lock()) {
        std::lock_guard lock(g->mu);
        if (g->writer) g->writer->pump_locked();
      }
    };
  }

  void start() {
    std::lock_guard lock(guard_->mu);
    if (!headers_sent_) return this->StartSendInitialMetadata();
    pump_locked();
  }

  void OnSendInitialMetadataDone(bool ok) override {
    std::lock_guard lock(guard_->mu);
    headers_sent_ = true;
    if (!ok) return finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "subscriber went away"));
    pump_locked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(guard_->mu);
    writing_ = false;
    if (!ok) return finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "subscriber went away"));
    pump_locked();
  }

  // The call ends here, or in OnWriteDone when a write is in flight: either way
  // `cancelled_` makes the next pump finish it, whatever the write's outcome.
  void OnCancel() override {
    {
      std::lock_guard lock(guard_->mu);
      cancelled_ = true;
      pump_locked();
    }
    feed_.unsubscribe();
  }

  void OnDone() override {
    feed_.unsubscribe();
    {
      std::lock_guard lock(guard_->mu);
      guard_->writer = nullptr;
    }
    delete this;
  }

 private:
  struct Guard {
    std::recursive_mutex mu;  // recursive: gRPC may run a reaction inline
    QueueWriter* writer = nullptr;
  };

  void pump_locked() {
    if (writing_ || finished_) return;
    if (cancelled_) return finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "subscription cancelled"));
    if (!headers_sent_) return;
    message_.Clear();
    if (feed_.next(&message_)) {
      writing_ = true;
      this->StartWrite(&message_);
      return;
    }
    if (auto closed = feed_.closed()) finish_locked(errdefs::to_grpc(*closed));
  }

  void finish_locked(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    this->Finish(s);
  }

  QueueFeed<Message> feed_;
  std::shared_ptr<Guard> guard_;
  Message message_;
  bool headers_sent_;
  bool writing_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
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
