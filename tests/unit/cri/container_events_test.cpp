// cri/container_events: fan-out to subscribers, and a subscriber that falls
// behind dropped rather than blocking the publisher.
#include "cri/container_events.h"

#include <gtest/gtest.h>

namespace ctrd::cri {
namespace {

::runtime::v1::ContainerEventResponse event(const std::string& id) {
  ::runtime::v1::ContainerEventResponse e;
  e.set_container_id(id);
  return e;
}

TEST(ContainerEvents, EverySubscriberGetsEveryEventInOrderAndIsWoken) {
  ContainerEvents events;
  auto a = events.subscribe();
  auto b = events.subscribe();
  int woken = 0;
  a->set_notify([&] { ++woken; });
  events.publish(event("one"));
  events.publish(event("two"));
  EXPECT_EQ(woken, 2);
  for (const auto& s : {a, b}) {
    EXPECT_EQ(s->pop()->container_id(), "one");
    EXPECT_EQ(s->pop()->container_id(), "two");
    EXPECT_FALSE(s->pop().has_value());
    EXPECT_FALSE(s->closed().has_value());
  }
  events.unsubscribe(b);
  events.publish(event("three"));
  EXPECT_EQ(a->pop()->container_id(), "three");
  EXPECT_FALSE(b->pop().has_value());
}

TEST(ContainerEvents, ASubscriberThatFallsBehindIsDroppedWithResourceExhausted) {
  ContainerEvents events(/*queue_limit=*/2);
  auto slow = events.subscribe();
  auto fast = events.subscribe();
  for (const char* id : {"1", "2"}) {
    events.publish(event(id));
    ASSERT_TRUE(fast->pop().has_value());
  }
  events.publish(event("3"));
  ASSERT_TRUE(slow->closed().has_value());
  EXPECT_EQ(slow->closed()->code(), errdefs::Code::kResourceExhausted);
  EXPECT_FALSE(slow->pop().has_value());
  EXPECT_EQ(fast->pop()->container_id(), "3");
  EXPECT_FALSE(fast->closed().has_value());
}

}  // namespace
}  // namespace ctrd::cri
