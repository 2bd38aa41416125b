// events/publish.h: publishing a protobuf event message — its type URL is the
// message's full name, as containerd's typeurl gives it (e.g.
// "containerd.events.NamespaceCreate").
#pragma once

#include <google/protobuf/message.h>

#include "events/exchange.h"

namespace ctrd::events {

inline errdefs::Status publish(Exchange& exchange, std::string_view ns, std::string_view topic,
                               const google::protobuf::Message& event) {
  return exchange.publish(ns, topic, event.GetDescriptor()->full_name(), event.SerializeAsString());
}

}  // namespace ctrd::events
