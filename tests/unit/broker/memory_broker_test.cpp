#include "broker/memory/memory_broker.hpp"

#include <gtest/gtest.h>

#include "broker/broker_contract.hpp"

using namespace herald;

namespace herald::test {
INSTANTIATE_TEST_SUITE_P(Memory, BrokerContract,
                         ::testing::Values(broker_factory{"memory", [](const core::namespace_table& ns) {
                           return broker_fixture{std::make_unique<broker::memory_broker>(
                                                     ns, broker::memory_broker_options{},
                                                     [](std::string_view) { return false; }),
                                                 nullptr};
                         }}),
                         [](const auto& info) { return info.param.name; });
}  // namespace herald::test

namespace {

struct memory_fixture : ::testing::Test {
  core::namespace_table ns;
  bool subscribed = false;
  broker::memory_broker_options opts;

  std::unique_ptr<broker::memory_broker> make() {
    return std::make_unique<broker::memory_broker>(ns, opts, [this](std::string_view) { return subscribed; });
  }
  static protocol::message_ptr publish(broker::memory_broker& b, const std::string& channel) {
    protocol::message_ptr out;
    b.publish({channel, "", "1"}, [&](auto r) { out = std::get<protocol::message_ptr>(r); });
    return out;
  }
};

}  // namespace

TEST_F(memory_fixture, IdleChannelWithoutHistoryIsReclaimedAndComesBackWithANewEpoch) {
  core::namespace_options o;
  o.history_size = 0;  // nothing kept: the channel is empty at once
  ns = core::namespace_table(o);
  opts.idle_ttl = std::chrono::seconds(0);
  auto b = make();
  auto m = publish(*b, "gone");
  EXPECT_EQ(b->sweep(), 1u);
  EXPECT_EQ(b->stats().channels, 0u);
  auto again = publish(*b, "gone");
  EXPECT_EQ(again->offset(), 1u);
  EXPECT_NE(again->epoch(), m->epoch());
}

TEST_F(memory_fixture, ChannelsWithSubscribersOrHistoryAreKept) {
  opts.idle_ttl = std::chrono::seconds(0);
  auto b = make();
  publish(*b, "kept");  // history holds it
  EXPECT_EQ(b->sweep(), 0u);

  core::namespace_options o;
  o.history_size = 0;
  ns = core::namespace_table(o);
  auto b2 = make();
  subscribed = true;
  publish(*b2, "watched");
  EXPECT_EQ(b2->sweep(), 0u);
}

TEST_F(memory_fixture, MaxChannelsIsEnforcedWithA429) {
  opts.max_channels = 2;
  auto b = make();
  publish(*b, "a");
  publish(*b, "b");
  util::api_error err;
  b->publish({"c", "", "1"}, [&](auto r) { err = std::get<util::api_error>(r); });
  EXPECT_EQ(err.status, 429);
  EXPECT_EQ(err.code, "too_many_channels");
}

TEST_F(memory_fixture, StatsCountHistory) {
  auto b = make();
  for (int i = 0; i < 3; ++i) publish(*b, "s");
  auto st = b->stats();
  EXPECT_EQ(st.channels, 1u);
  EXPECT_EQ(st.history_messages, 3u);
  EXPECT_GT(st.history_bytes, 0u);
}

TEST_F(memory_fixture, StatsAreRunningTotalsThatFollowEvictionAndReclaim) {
  core::namespace_options o;
  o.history_size = 2;
  ns = core::namespace_table(o);
  auto b = make();
  for (int i = 0; i < 5; ++i) publish(*b, "evicting");
  publish(*b, "other");
  auto st = b->stats();
  EXPECT_EQ(st.channels, 2u);
  EXPECT_EQ(st.history_messages, 3u);  // 2 kept of 5, and 1
  const auto one_channel_bytes = st.history_bytes;
  EXPECT_GT(one_channel_bytes, 0u);

  core::namespace_options none;
  none.history_size = 0;
  ns = core::namespace_table(none);
  opts.idle_ttl = std::chrono::seconds(0);
  auto empty = make();
  publish(*empty, "x");
  EXPECT_EQ(empty->stats().history_messages, 0u);
  EXPECT_EQ(empty->stats().history_bytes, 0u);
  empty->sweep();
  EXPECT_EQ(empty->stats().channels, 0u);
}
