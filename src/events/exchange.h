// events: the exchange every plugin publishes to and every Subscribe call reads.
//
// Publishing never blocks on subscribers: each subscription owns a bounded
// queue and a notify callback the subscriber uses to drain it (the gRPC layer
// wakes a stream reactor; no thread is parked per subscriber). Policy for a
// subscriber that falls behind: when its queue is full, the subscription is
// closed with ResourceExhausted, so a slow client learns it lost events instead
// of silently missing some, and memory stays bounded.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "filters/filters.h"

namespace ctrd::events {

struct Envelope {
  std::chrono::system_clock::time_point timestamp;
  std::string ns;
  std::string topic;
  std::string type_url;  // e.g. "containerd.events.NamespaceCreate"
  std::string value;     // the serialized event message
};

class Exchange;

class Subscription {
 public:
  // Takes the next queued envelope, if any.
  std::optional<Envelope> pop();
  // Non-OK once the subscription is closed (overflow or exchange shutdown).
  errdefs::Status closed_reason() const;
  bool closed() const;
  // Called after each enqueue and on close, on the publisher's thread: it must
  // be quick and must not call back into the exchange's publish.
  void set_notify(std::function<void()> notify);

 private:
  friend class Exchange;
  Subscription(filters::Filter filter, size_t limit) : filter_(std::move(filter)), limit_(limit) {}
  // Returns false when the envelope overflowed the queue (the subscription closes).
  bool offer(const Envelope& e);
  void close(errdefs::Status why);

  const filters::Filter filter_;
  const size_t limit_;
  mutable std::mutex mu_;
  std::deque<Envelope> queue_;
  errdefs::Status closed_;
  std::function<void()> notify_;
};

class Exchange {
 public:
  static constexpr size_t kDefaultQueueLimit = 4096;

  // Validates namespace and topic, stamps the time and delivers.
  errdefs::Status publish(std::string_view ns, std::string_view topic, std::string type_url,
                          std::string value);
  // Delivers an envelope made elsewhere (e.g. a shim), keeping its timestamp.
  errdefs::Status forward(const Envelope& envelope);

  // Filters are containerd's (fields: namespace, topic, event.<field path>).
  errdefs::StatusOr<std::shared_ptr<Subscription>> subscribe(const std::vector<std::string>& filters,
                                                             size_t queue_limit = kDefaultQueueLimit);
  void unsubscribe(const std::shared_ptr<Subscription>& s);
  // Closes every subscription (shutdown).
  void close_all(const errdefs::Status& why);
  size_t subscriber_count() const;

  // Field lookup on an event payload by protobuf reflection, for filters on
  // `event.<path>` (string, number and bool fields, string maps, nested messages).
  static std::optional<std::string> event_field(const Envelope& e, const std::vector<std::string>& path);

 private:
  void deliver(const Envelope& e);

  mutable std::mutex mu_;
  std::list<std::shared_ptr<Subscription>> subscribers_;
};

// containerd's topic rule: "/" followed by identifier components.
errdefs::Status validate_topic(std::string_view topic);

}  // namespace ctrd::events
