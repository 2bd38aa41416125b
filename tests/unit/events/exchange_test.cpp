#include <gtest/gtest.h>

#include <github.com/containerd/containerd/api/events/namespace.pb.h>

#include <atomic>
#include <thread>

#include "events/exchange.h"

namespace ctrd::events {
namespace {

std::string namespace_create(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  containerd::events::NamespaceCreate ev;
  ev.set_name(name);
  for (const auto& [k, v] : labels) (*ev.mutable_labels())[k] = v;
  return ev.SerializeAsString();
}

TEST(Exchange, PublishReachesMatchingSubscribersOnly) {
  Exchange ex;
  auto all = ex.subscribe({});
  auto ns_a = ex.subscribe({"namespace==a"});
  auto topic = ex.subscribe({"topic~=\"^/namespaces/\""});
  ASSERT_TRUE(all.ok() && ns_a.ok() && topic.ok());
  ASSERT_TRUE(
      ex.publish("a", "/namespaces/create", "containerd.events.NamespaceCreate", namespace_create("a")).ok());
  ASSERT_TRUE(ex.publish("b", "/content/delete", "containerd.events.ContentDelete", "").ok());
  auto e = (*all)->pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->topic, "/namespaces/create");
  EXPECT_EQ(e->ns, "a");
  EXPECT_TRUE((*all)->pop().has_value());
  EXPECT_FALSE((*all)->pop().has_value());
  EXPECT_TRUE((*ns_a)->pop().has_value());
  EXPECT_FALSE((*ns_a)->pop().has_value());
  EXPECT_TRUE((*topic)->pop().has_value());
  EXPECT_FALSE((*topic)->pop().has_value());
}

TEST(Exchange, FiltersOnEventFields) {
  Exchange ex;
  auto by_name = ex.subscribe({"event.name==wanted"});
  auto by_label = ex.subscribe({"event.labels.team==infra"});
  ASSERT_TRUE(by_name.ok() && by_label.ok());
  const std::string type = "containerd.events.NamespaceCreate";
  ASSERT_TRUE(
      ex.publish("x", "/namespaces/create", type, namespace_create("other", {{"team", "infra"}})).ok());
  ASSERT_TRUE(ex.publish("x", "/namespaces/create", type, namespace_create("wanted")).ok());
  auto e = (*by_name)->pop();
  ASSERT_TRUE(e.has_value());
  containerd::events::NamespaceCreate got;
  ASSERT_TRUE(got.ParseFromString(e->value));
  EXPECT_EQ(got.name(), "wanted");
  EXPECT_FALSE((*by_name)->pop().has_value());
  ASSERT_TRUE((*by_label)->pop().has_value());
  EXPECT_FALSE((*by_label)->pop().has_value());
}

TEST(Exchange, InvalidTopicOrNamespaceIsRejected) {
  Exchange ex;
  EXPECT_EQ(ex.publish("a", "no-slash", "t", "").code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(ex.publish("a", "/", "t", "").code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(ex.publish("a", "/bad component", "t", "").code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(ex.publish("", "/x", "t", "").code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(ex.publish("a b", "/x", "t", "").code(), errdefs::Code::kInvalidArgument);
  EXPECT_TRUE(ex.publish("a", "/x/y", "t", "").ok());
}

TEST(Exchange, BadFilterIsInvalidArgument) {
  Exchange ex;
  auto s = ex.subscribe({"topic==\"open"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), errdefs::Code::kInvalidArgument);
}

TEST(Exchange, SlowSubscriberIsClosedNotBlockingPublishers) {
  Exchange ex;
  auto slow = ex.subscribe({}, /*queue_limit=*/8);
  auto fast = ex.subscribe({}, 1000);
  ASSERT_TRUE(slow.ok() && fast.ok());
  std::atomic<int> notified{0};
  (*slow)->set_notify([&] { notified++; });
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ex.publish("a", "/t", "t", std::to_string(i)).ok());
  EXPECT_TRUE((*slow)->closed());
  EXPECT_EQ((*slow)->closed_reason().code(), errdefs::Code::kResourceExhausted);
  EXPECT_GT(notified.load(), 0);
  EXPECT_EQ(ex.subscriber_count(), 1u) << "the overflowed subscriber is dropped";
  int n = 0;
  while ((*fast)->pop()) ++n;
  EXPECT_EQ(n, 100);
}

TEST(Exchange, CloseAllEndsSubscriptions) {
  Exchange ex;
  auto s = ex.subscribe({});
  ASSERT_TRUE(s.ok());
  ex.close_all(errdefs::Unavailable("bye"));
  EXPECT_TRUE((*s)->closed());
  EXPECT_EQ(ex.subscriber_count(), 0u);
}

TEST(Exchange, ConcurrentPublishersAndSubscribers) {
  Exchange ex;
  std::vector<std::shared_ptr<Subscription>> subs;
  for (int i = 0; i < 50; ++i) subs.push_back(*ex.subscribe({}, 100000));
  std::vector<std::thread> pubs;
  for (int t = 0; t < 4; ++t) {
    pubs.emplace_back([&ex] {
      for (int i = 0; i < 500; ++i) EXPECT_TRUE(ex.publish("ns", "/t", "t", "").ok());
    });
  }
  for (auto& t : pubs) t.join();
  for (auto& s : subs) {
    int n = 0;
    while (s->pop()) ++n;
    EXPECT_EQ(n, 2000);
  }
}

}  // namespace
}  // namespace ctrd::events
