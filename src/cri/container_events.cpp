#include "cri/container_events.h"

namespace ctrd::cri {

std::optional<::runtime::v1::ContainerEventResponse> ContainerEvents::Subscriber::pop() {
  std::lock_guard lock(mu_);
  if (queue_.empty()) return std::nullopt;
  auto event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

std::optional<errdefs::Status> ContainerEvents::Subscriber::closed() const {
  std::lock_guard lock(mu_);
  // Queued events are delivered before the close.
  if (!queue_.empty()) return std::nullopt;
  return closed_;
}

void ContainerEvents::Subscriber::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

std::shared_ptr<ContainerEvents::Subscriber> ContainerEvents::subscribe() {
  auto subscriber = std::make_shared<Subscriber>();
  std::lock_guard lock(mu_);
  subscribers_.push_back(subscriber);
  return subscriber;
}

void ContainerEvents::unsubscribe(const std::shared_ptr<Subscriber>& subscriber) {
  std::lock_guard lock(mu_);
  subscribers_.remove(subscriber);
}

void ContainerEvents::publish(const ::runtime::v1::ContainerEventResponse& event) {
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard lock(mu_);
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      Subscriber& s = **it;
      std::lock_guard sub_lock(s.mu_);
      if (s.queue_.size() >= queue_limit_) {
        s.closed_ = errdefs::ResourceExhausted("the container event subscriber fell behind by " +
                                               std::to_string(queue_limit_) + " events");
        s.queue_.clear();
        if (s.notify_) wake.push_back(s.notify_);
        it = subscribers_.erase(it);
        continue;
      }
      s.queue_.push_back(event);
      if (s.notify_) wake.push_back(s.notify_);
      ++it;
    }
  }
  for (auto& notify : wake) notify();
}

}  // namespace ctrd::cri
