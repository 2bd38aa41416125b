// cri/container_events: GetContainerEvents' stream — container created,
// started, stopped and deleted, each with its pod's status and the statuses
// of the pod's containers, fanned out to every subscriber (the kubelet's
// evented PLEG). Publishing never blocks: each subscriber has a bounded
// queue, and one that falls that far behind is dropped with
// ResourceExhausted, so it relists rather than trust a gap.
#pragma once

#include <cri/runtime/v1/api.pb.h>

#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "errdefs/errdefs.h"

namespace ctrd::cri {

class ContainerEvents {
 public:
  class Subscriber {
   public:
    // The next event, if one is queued.
    std::optional<::runtime::v1::ContainerEventResponse> pop();
    // Set once the subscriber was dropped (it fell behind) or the source ended.
    std::optional<errdefs::Status> closed() const;
    // Called (from the publisher's thread) whenever an event is queued or the
    // subscription closes. Set before the first publish can reach it.
    void set_notify(std::function<void()> notify);

   private:
    friend class ContainerEvents;
    mutable std::mutex mu_;
    std::deque<::runtime::v1::ContainerEventResponse> queue_;
    std::optional<errdefs::Status> closed_;
    std::function<void()> notify_;
  };

  explicit ContainerEvents(size_t queue_limit = 1024) : queue_limit_(queue_limit) {}

  std::shared_ptr<Subscriber> subscribe();
  void unsubscribe(const std::shared_ptr<Subscriber>& subscriber);
  void publish(const ::runtime::v1::ContainerEventResponse& event);

 private:
  const size_t queue_limit_;
  std::mutex mu_;
  std::list<std::shared_ptr<Subscriber>> subscribers_;
};

}  // namespace ctrd::cri
