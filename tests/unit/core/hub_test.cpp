#include "core/hub.hpp"

#include <gtest/gtest.h>

#include "core/test_threads.hpp"

using namespace herald;
using protocol::message;
using protocol::message_ptr;

namespace {

struct recorder final : core::subscriber {
  core::transport kind_ = core::transport::sse;
  std::vector<std::uint64_t> got;
  std::function<void()> on_deliver;
  void deliver(const message_ptr& m) override {
    got.push_back(m->offset());
    if (on_deliver) on_deliver();
  }
  core::transport kind() const noexcept override { return kind_; }
  std::vector<std::string> resyncs;
  void resync_hint(const std::string& channel) override { resyncs.push_back(channel); }
};

message_ptr msg(const std::string& channel, std::uint64_t offset) {
  return std::make_shared<message>(channel, offset, 1, 0, "", "null");
}

}  // namespace

TEST(Hub, DeliversOnlyToThreadsWithSubscribersInOrder) {
  test::manual_threads threads(3);
  core::hub hub(threads.posters());
  recorder a, b;
  hub.subscribe(0, "news", &a);
  hub.subscribe(2, "news", &b);
  for (std::uint64_t i = 1; i <= 3; ++i) hub.on_publication(msg("news", i));
  EXPECT_EQ(threads.queues[0].size(), 3u);
  EXPECT_EQ(threads.queues[1].size(), 0u);  // nothing for a thread without subscribers
  EXPECT_EQ(threads.queues[2].size(), 3u);
  threads.run_all();
  EXPECT_EQ(a.got, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(b.got, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(Hub, OnePostPerThreadWhateverTheNumberOfSubscribers) {
  test::manual_threads threads(2);
  core::hub hub(threads.posters());
  std::vector<recorder> subs(1000);
  for (auto& s : subs) hub.subscribe(1, "fan", &s);
  hub.on_publication(msg("fan", 1));
  EXPECT_EQ(threads.queues[1].size(), 1u);
  threads.run_all();
  for (auto& s : subs) ASSERT_EQ(s.got.size(), 1u);
}

TEST(Hub, UnsubscribeDuringDeliveryIsSafe) {
  test::manual_threads threads(1);
  core::hub hub(threads.posters());
  recorder a, b, c;
  hub.subscribe(0, "x", &a);
  hub.subscribe(0, "x", &b);
  hub.subscribe(0, "x", &c);
  a.on_deliver = [&] {
    hub.unsubscribe(0, "x", &a);
    hub.unsubscribe(0, "x", &b);
  };
  hub.on_publication(msg("x", 1));
  threads.run_all();
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(c.got.size(), 1u);
  hub.on_publication(msg("x", 2));
  threads.run_all();
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(c.got, (std::vector<std::uint64_t>{1, 2}));
}

TEST(Hub, CountsPerTransportAndForgetsEmptyChannels) {
  test::manual_threads threads(2);
  core::hub hub(threads.posters());
  recorder s1, s2;
  s2.kind_ = core::transport::poll;
  hub.subscribe(0, "c", &s1);
  hub.subscribe(1, "c", &s2);
  ASSERT_TRUE(hub.has_subscribers("c"));
  auto counts = hub.counts();
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].second[0], 1u);
  EXPECT_EQ(counts[0].second[1], 1u);
  hub.unsubscribe(0, "c", &s1);
  hub.unsubscribe(1, "c", &s2);
  EXPECT_FALSE(hub.has_subscribers("c"));
  hub.on_publication(msg("c", 1));
  EXPECT_TRUE(threads.queues[0].empty());
  EXPECT_TRUE(threads.queues[1].empty());
}

namespace {
// A subscriber that keeps the slot the hub tells it, like subscriber_session does.
struct slotted final : core::subscriber {
  std::uint32_t slot = core::hub::no_slot;
  std::vector<std::uint64_t> got;
  void deliver(const message_ptr& m) override { got.push_back(m->offset()); }
  core::transport kind() const noexcept override { return core::transport::ws; }
  void resync_hint(const std::string&) override {}
  void hub_slot(const std::string&, std::uint32_t s) override { slot = s; }
};
}  // namespace

TEST(Hub, SlotsStayTrueThroughRemovalsInAnyOrderAndCompaction) {
  test::manual_threads threads(1);
  core::hub hub(threads.posters());
  std::vector<slotted> subs(2000);
  for (auto& s : subs) s.slot = hub.subscribe(0, "big", &s);
  // Leave in a scrambled order, half of them, some during a delivery (holes, then a
  // compaction that renumbers), the rest outside it (swap with the last).
  std::vector<std::size_t> order(subs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = (i * 7919) % order.size();
  for (std::size_t k = 0; k < 500; ++k) hub.unsubscribe(0, "big", &subs[order[k]], subs[order[k]].slot);
  std::size_t k = 500;
  struct leaver final : core::subscriber {
    std::function<void()> fn;
    void deliver(const message_ptr&) override { fn(); }
    core::transport kind() const noexcept override { return core::transport::ws; }
    void resync_hint(const std::string&) override {}
  } trigger;
  trigger.fn = [&] {
    for (; k < 1000; ++k) hub.unsubscribe(0, "big", &subs[order[k]], subs[order[k]].slot);
  };
  hub.subscribe(0, "big", &trigger);
  hub.on_publication(msg("big", 1));
  threads.run_all();
  hub.unsubscribe(0, "big", &trigger);
  hub.on_publication(msg("big", 2));
  threads.run_all();
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const bool left = std::find(order.begin(), order.begin() + 1000, i) != order.begin() + 1000;
    if (left) {
      EXPECT_TRUE(subs[i].got.empty() || subs[i].got == std::vector<std::uint64_t>{1}) << i;
      EXPECT_TRUE(std::find(subs[i].got.begin(), subs[i].got.end(), 2u) == subs[i].got.end()) << i;
    } else {
      EXPECT_EQ(subs[i].got, (std::vector<std::uint64_t>{1, 2})) << i;
    }
  }
  EXPECT_EQ(hub.subscriber_count("big"), 1000u);
  // Every remaining slot is exact: removing with it leaves nobody behind.
  for (std::size_t j = 1000; j < 2000; ++j) hub.unsubscribe(0, "big", &subs[order[j]], subs[order[j]].slot);
  EXPECT_EQ(hub.subscriber_count("big"), 0u);
  EXPECT_FALSE(hub.has_subscribers("big"));
}
