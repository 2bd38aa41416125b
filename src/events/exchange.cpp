#include "events/exchange.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>

#include <algorithm>

#include "identifiers/identifiers.h"

namespace ctrd::events {

using errdefs::Status;

std::optional<Envelope> Subscription::pop() {
  std::lock_guard lock(mu_);
  if (queue_.empty()) return std::nullopt;
  Envelope e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

Status Subscription::closed_reason() const {
  std::lock_guard lock(mu_);
  return closed_;
}

bool Subscription::closed() const {
  std::lock_guard lock(mu_);
  return !closed_.ok();
}

void Subscription::set_notify(std::function<void()> notify) {
  std::function<void()> now;
  {
    std::lock_guard lock(mu_);
    notify_ = std::move(notify);
    if (!queue_.empty() || !closed_.ok()) now = notify_;
  }
  if (now) now();
}

bool Subscription::offer(const Envelope& e) {
  std::function<void()> notify;
  bool overflow = false;
  {
    std::lock_guard lock(mu_);
    if (!closed_.ok()) return true;
    if (queue_.size() >= limit_) {
      overflow = true;
      closed_ = errdefs::ResourceExhausted("event subscriber too slow: " + std::to_string(limit_) +
                                           " events queued, subscription closed");
    } else {
      queue_.push_back(e);
    }
    notify = notify_;
  }
  if (notify) notify();
  return !overflow;
}

void Subscription::close(Status why) {
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    if (!closed_.ok()) return;
    closed_ = std::move(why);
    notify = notify_;
  }
  if (notify) notify();
}

Status validate_topic(std::string_view topic) {
  if (topic.empty()) return errdefs::InvalidArgument("topic must not be empty");
  if (topic.front() != '/')
    return errdefs::InvalidArgument("topic \"" + std::string(topic) + "\" must start with '/'");
  if (topic.size() == 1) return errdefs::InvalidArgument("topic must have at least one component");
  std::string_view rest = topic.substr(1);
  while (true) {
    size_t slash = rest.find('/');
    std::string_view component = rest.substr(0, slash);
    if (auto s = identifiers::validate(component); !s.ok()) {
      return s.with_context("topic \"" + std::string(topic) + "\" component \"" + std::string(component) +
                            "\"");
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Status::Ok();
}

Status Exchange::publish(std::string_view ns, std::string_view topic, std::string type_url,
                         std::string value) {
  Envelope e{std::chrono::system_clock::now(), std::string(ns), std::string(topic), std::move(type_url),
             std::move(value)};
  return forward(e);
}

Status Exchange::forward(const Envelope& envelope) {
  if (auto s = identifiers::validate(envelope.ns); !s.ok())
    return s.with_context("event envelope has invalid namespace");
  CTRD_RETURN_IF_ERROR(validate_topic(envelope.topic));
  deliver(envelope);
  return Status::Ok();
}

void Exchange::deliver(const Envelope& e) {
  std::vector<std::shared_ptr<Subscription>> targets;
  {
    std::lock_guard lock(mu_);
    targets.assign(subscribers_.begin(), subscribers_.end());
  }
  const filters::Adaptor adaptor = [&e](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    if (path[0] == "namespace") return e.ns;
    if (path[0] == "topic") return e.topic;
    if (path[0] == "event") return event_field(e, {path.begin() + 1, path.end()});
    return std::nullopt;
  };
  std::vector<std::shared_ptr<Subscription>> overflowed;
  for (const auto& s : targets) {
    if (!s->filter_.empty() && !s->filter_.match(adaptor)) continue;
    if (!s->offer(e)) overflowed.push_back(s);
  }
  for (const auto& s : overflowed) unsubscribe(s);
}

errdefs::StatusOr<std::shared_ptr<Subscription>> Exchange::subscribe(
    const std::vector<std::string>& filter_texts, size_t queue_limit) {
  CTRD_ASSIGN_OR_RETURN(filters::Filter filter, filters::parse_all(filter_texts));
  auto s =
      std::shared_ptr<Subscription>(new Subscription(std::move(filter), std::max<size_t>(queue_limit, 1)));
  std::lock_guard lock(mu_);
  subscribers_.push_back(s);
  return s;
}

void Exchange::unsubscribe(const std::shared_ptr<Subscription>& s) {
  {
    std::lock_guard lock(mu_);
    subscribers_.remove(s);
  }
  // Nothing will be delivered any more: a reader waiting for the next envelope
  // must learn that now, or it waits forever.
  s->close(errdefs::Canceled("unsubscribed"));
}

void Exchange::close_all(const Status& why) {
  std::list<std::shared_ptr<Subscription>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(subscribers_);
  }
  for (const auto& s : all) s->close(why);
}

size_t Exchange::subscriber_count() const {
  std::lock_guard lock(mu_);
  return subscribers_.size();
}

std::optional<std::string> Exchange::event_field(const Envelope& e, const std::vector<std::string>& path) {
  namespace pb = google::protobuf;
  if (path.empty()) return std::nullopt;
  std::string_view type_name = e.type_url;
  if (auto slash = type_name.rfind('/'); slash != std::string_view::npos) type_name.remove_prefix(slash + 1);
  const pb::Descriptor* desc =
      pb::DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(type_name));
  if (desc == nullptr) return std::nullopt;
  const pb::Message* prototype = pb::MessageFactory::generated_factory()->GetPrototype(desc);
  if (prototype == nullptr) return std::nullopt;
  std::unique_ptr<pb::Message> msg(prototype->New());
  if (!msg->ParseFromString(e.value)) return std::nullopt;

  const pb::Message* cur = msg.get();
  for (size_t i = 0; i < path.size(); ++i) {
    const pb::Descriptor* d = cur->GetDescriptor();
    const pb::FieldDescriptor* f = d->FindFieldByName(path[i]);
    if (f == nullptr) return std::nullopt;
    const pb::Reflection* r = cur->GetReflection();
    const bool last = i + 1 == path.size();
    if (f->is_map()) {
      // Only string-keyed, string-valued maps (labels) are addressable.
      if (i + 2 != path.size()) return std::nullopt;
      for (int k = 0; k < r->FieldSize(*cur, f); ++k) {
        const pb::Message& entry = r->GetRepeatedMessage(*cur, f, k);
        const pb::Reflection* er = entry.GetReflection();
        const auto* kf = entry.GetDescriptor()->map_key();
        const auto* vf = entry.GetDescriptor()->map_value();
        if (kf->type() != pb::FieldDescriptor::TYPE_STRING ||
            vf->type() != pb::FieldDescriptor::TYPE_STRING) {
          return std::nullopt;
        }
        if (er->GetString(entry, kf) == path[i + 1]) return er->GetString(entry, vf);
      }
      return std::nullopt;
    }
    if (f->is_repeated()) return std::nullopt;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (last || !r->HasField(*cur, f)) return std::nullopt;
      cur = &r->GetMessage(*cur, f);
      continue;
    }
    if (!last) return std::nullopt;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        std::string v = r->GetString(*cur, f);
        if (v.empty()) return std::nullopt;  // unset, as containerd's adaptors see it
        return v;
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(*cur, f) ? "true" : "false";
      case pb::FieldDescriptor::CPPTYPE_INT32:
        return std::to_string(r->GetInt32(*cur, f));
      case pb::FieldDescriptor::CPPTYPE_INT64:
        return std::to_string(r->GetInt64(*cur, f));
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        return std::to_string(r->GetUInt32(*cur, f));
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        return std::to_string(r->GetUInt64(*cur, f));
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace ctrd::events
