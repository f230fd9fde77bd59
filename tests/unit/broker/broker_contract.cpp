#include "broker/broker_contract.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

namespace herald::test {
namespace {

std::vector<std::uint64_t> offsets(const std::vector<protocol::message_ptr>& v) {
  std::vector<std::uint64_t> out;
  for (auto& m : v) out.push_back(m->offset());
  return out;
}

}  // namespace

TEST_P(BrokerContract, OffsetsStartAtOneAndAreGapFreePerChannel) {
  for (std::uint64_t i = 1; i <= 5; ++i) EXPECT_EQ(publish("a")->offset(), i);
  EXPECT_EQ(publish("b")->offset(), 1u);
  EXPECT_EQ(publish("a")->offset(), 6u);
}

TEST_P(BrokerContract, EpochIsNonZeroAndStableWithinALife) {
  auto m1 = publish("e");
  auto m2 = publish("e");
  EXPECT_NE(m1->epoch(), 0u);
  EXPECT_EQ(m1->epoch(), m2->epoch());
}

TEST_P(BrokerContract, ListenerSeesEveryPublicationInOffsetOrder) {
  watch("ordered");
  for (int i = 0; i < 20; ++i) publish("ordered", std::to_string(i));
  auto got = seen("ordered", 20);
  ASSERT_EQ(got.size(), 20u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i + 1);
}

TEST_P(BrokerContract, MessageCarriesDataAndEvent) {
  auto m = publish("d", R"({"x":[1,2]})", "update");
  EXPECT_EQ(m->data_json(), R"({"x":[1,2]})");
  EXPECT_EQ(m->event(), "update");
  EXPECT_EQ(m->channel(), "d");
}

TEST_P(BrokerContract, HistoryReadsStopAtTheirByteBoundButAlwaysProgress) {
  std::vector<protocol::message_ptr> m;
  for (int i = 0; i < 5; ++i) m.push_back(publish("bytes", "\"" + std::string(100 + i, 'x') + "\""));
  const auto e = m[0]->epoch();
  auto two = std::get<core::history_reply>(history("bytes", core::position{e, 0}, 100, m[0]->json().size() + m[1]->json().size()));
  EXPECT_EQ(offsets(two.messages), (std::vector<std::uint64_t>{1, 2}));
  auto one = std::get<core::history_reply>(history("bytes", core::position{e, 2}, 100, 1));
  EXPECT_EQ(offsets(one.messages), (std::vector<std::uint64_t>{3}));  // over the bound, but one goes
  auto newest = std::get<core::history_reply>(history("bytes", std::nullopt, 100, m[3]->json().size() + m[4]->json().size()));
  EXPECT_EQ(offsets(newest.messages), (std::vector<std::uint64_t>{4, 5}));
  auto latest_one = std::get<core::history_reply>(history("bytes", std::nullopt, 100, 1));
  EXPECT_EQ(offsets(latest_one.messages), (std::vector<std::uint64_t>{5}));
  auto all = std::get<core::history_reply>(history("bytes", core::position{e, 0}, 100, 0));
  EXPECT_EQ(all.messages.size(), 5u);
}

TEST_P(BrokerContract, HistorySinceReturnsExactlyTheMessagesAfterTheCursor) {
  protocol::message_ptr third;
  for (int i = 1; i <= 6; ++i) {
    auto m = publish("h");
    if (i == 3) third = m;
  }
  auto r = history("h", core::position{third->epoch(), 3});
  auto& reply = std::get<core::history_reply>(r);
  EXPECT_TRUE(reply.recovered);
  EXPECT_EQ(offsets(reply.messages), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(reply.top, 6u);

  auto limited = std::get<core::history_reply>(history("h", core::position{third->epoch(), 3}, 2));
  EXPECT_EQ(offsets(limited.messages), (std::vector<std::uint64_t>{4, 5}));

  auto current = std::get<core::history_reply>(history("h", core::position{third->epoch(), 6}));
  EXPECT_TRUE(current.recovered);
  EXPECT_TRUE(current.messages.empty());
}

TEST_P(BrokerContract, HistoryWithoutCursorReturnsTheNewest) {
  for (int i = 0; i < 5; ++i) publish("latest");
  auto reply = std::get<core::history_reply>(history("latest", std::nullopt, 2));
  EXPECT_EQ(offsets(reply.messages), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_TRUE(reply.recovered);
}

TEST_P(BrokerContract, OtherEpochIsNotRecovered) {
  auto m = publish("ep");
  auto reply = std::get<core::history_reply>(history("ep", core::position{m->epoch() + 1, 1}));
  EXPECT_FALSE(reply.recovered);
  EXPECT_TRUE(reply.messages.empty());
  EXPECT_EQ(reply.top, 1u);
  EXPECT_EQ(reply.epoch, m->epoch());
}

TEST_P(BrokerContract, EvictedGapIsNotRecovered) {
  auto first = publish("small:x");
  for (int i = 0; i < 5; ++i) publish("small:x");  // history keeps 3: offsets 4..6
  auto lost = std::get<core::history_reply>(history("small:x", core::position{first->epoch(), 1}));
  EXPECT_FALSE(lost.recovered);
  EXPECT_TRUE(lost.messages.empty());
  auto kept = std::get<core::history_reply>(history("small:x", core::position{first->epoch(), 3}));
  EXPECT_TRUE(kept.recovered);
  EXPECT_EQ(offsets(kept.messages), (std::vector<std::uint64_t>{4, 5, 6}));
}

TEST_P(BrokerContract, EarliestReadsFromTheOldestMessageHistoryStillHolds) {
  for (int i = 0; i < 6; ++i) publish("small:early");  // history keeps 3: offsets 4..6
  auto all = std::get<core::history_reply>(history_earliest("small:early"));
  EXPECT_TRUE(all.recovered);
  EXPECT_EQ(offsets(all.messages), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(all.top, 6u);
  auto two = std::get<core::history_reply>(history_earliest("small:early", 2));
  EXPECT_EQ(offsets(two.messages), (std::vector<std::uint64_t>{4, 5}));
  auto unknown = std::get<core::history_reply>(history_earliest("never-published"));
  EXPECT_TRUE(unknown.recovered);
  EXPECT_TRUE(unknown.messages.empty());
  EXPECT_EQ(unknown.epoch, 0u);
  EXPECT_EQ(unknown.top, 0u);
}

TEST_P(BrokerContract, ExpectedOffsetAppendsOnlyAtThatOffset) {
  auto first = try_publish({"exp", "", "1", 1});
  ASSERT_TRUE(std::holds_alternative<protocol::message_ptr>(first));
  EXPECT_EQ(std::get<protocol::message_ptr>(first)->offset(), 1u);
  auto retry = try_publish({"exp", "", "1", 1});
  ASSERT_TRUE(std::holds_alternative<util::api_error>(retry));
  EXPECT_EQ(std::get<util::api_error>(retry).status, 409);
  EXPECT_EQ(std::get<util::api_error>(retry).code, "offset_mismatch");
  EXPECT_EQ(std::get<util::api_error>(retry).extra_json, "\"next_offset\":2");
  auto fresh = try_publish({"exp-new", "", "1", 2});  // a channel with no life: next is 1
  ASSERT_TRUE(std::holds_alternative<util::api_error>(fresh));
  EXPECT_EQ(std::get<util::api_error>(fresh).extra_json, "\"next_offset\":1");
  EXPECT_EQ(publish("exp")->offset(), 2u);
  auto e = std::get<core::history_reply>(history_earliest("exp"));
  EXPECT_EQ(offsets(e.messages), (std::vector<std::uint64_t>{1, 2}));
}

TEST_P(BrokerContract, TheEndIsTheLastMessageOfItsChannel) {
  publish("fin", "\"a\"");
  auto before = std::get<core::history_reply>(history_earliest("fin"));
  EXPECT_FALSE(before.ended);
  auto end = publish("fin", R"({"state":"completed","reason":null})", "end");
  ASSERT_TRUE(end);
  EXPECT_EQ(end->offset(), 2u);
  auto after = std::get<core::history_reply>(history("fin", core::position{end->epoch(), 2}));
  EXPECT_TRUE(after.ended);
  EXPECT_EQ(after.top, 2u);
  auto late = try_publish({"fin", "", "1"});
  ASSERT_TRUE(std::holds_alternative<util::api_error>(late));
  EXPECT_EQ(std::get<util::api_error>(late).status, 409);
  EXPECT_EQ(std::get<util::api_error>(late).code, "stream_ended");
  EXPECT_EQ(std::get<core::history_reply>(history_earliest("fin")).messages.size(), 2u);
}

TEST_P(BrokerContract, HistoryBytesBoundKeepsTheNewestWithinIt) {
  const std::string data = "\"" + std::string(200, 'x') + "\"";
  for (int i = 0; i < 30; ++i) publish("hb:x", data);
  auto held = std::get<core::history_reply>(history_earliest("hb:x")).messages;
  ASSERT_FALSE(held.empty());
  EXPECT_LT(held.size(), 30u);  // 30 × 200 bytes of data do not fit 2000 bytes
  EXPECT_GT(held.size(), 1u);
  EXPECT_EQ(held.back()->offset(), 30u);
  for (std::size_t i = 1; i < held.size(); ++i) EXPECT_EQ(held[i]->offset(), held[i - 1]->offset() + 1);
  publish("hb:x", "\"" + std::string(5000, 'y') + "\"");  // alone over the bound: kept, alone
  auto big = std::get<core::history_reply>(history_earliest("hb:x")).messages;
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0]->offset(), 31u);
  publish("hb:x", data);
  EXPECT_EQ(std::get<core::history_reply>(history_earliest("hb:x")).messages.size(), 1u);  // the big one went
}

TEST_P(BrokerContract, CursorAheadOfTheChannelIsRefused) {
  auto m = publish("ahead");
  auto r = history("ahead", core::position{m->epoch(), 99});
  ASSERT_TRUE(std::holds_alternative<util::api_error>(r));
  EXPECT_EQ(std::get<util::api_error>(r).code, "bad_cursor");
  EXPECT_EQ(std::get<util::api_error>(r).status, 400);
}

TEST_P(BrokerContract, ReadingAnUnknownChannelCreatesNothingAndItsFirstLifeRecoversFromZero) {
  auto before = std::get<core::history_reply>(history("fresh", std::nullopt, 10));
  EXPECT_TRUE(before.messages.empty());
  EXPECT_TRUE(before.recovered);
  EXPECT_EQ(before.top, 0u);
  EXPECT_EQ(before.epoch, 0u);  // no life yet: nothing was created by reading
  auto still = std::get<core::history_reply>(history("fresh", core::position{0, 0}, 10));
  EXPECT_TRUE(still.recovered);
  EXPECT_EQ(still.epoch, 0u);
  // A cursor of a lost life is not recovered; one ahead of "nothing" is refused.
  EXPECT_FALSE(std::get<core::history_reply>(history("fresh", core::position{77, 3}, 10)).recovered);
  EXPECT_TRUE(std::holds_alternative<util::api_error>(history("fresh", core::position{0, 3}, 10)));

  auto m1 = publish("fresh");
  publish("fresh");
  EXPECT_EQ(m1->offset(), 1u);
  EXPECT_NE(m1->epoch(), 0u);
  // The position a reader got before the first publication recovers every message.
  auto after = std::get<core::history_reply>(history("fresh", core::position{0, 0}, 10));
  EXPECT_TRUE(after.recovered);
  EXPECT_EQ(after.epoch, m1->epoch());
  ASSERT_EQ(after.messages.size(), 2u);
  EXPECT_EQ(after.messages[0]->offset(), 1u);
}

TEST_P(BrokerContract, ConcurrentPublishersGetDistinctGapFreeOffsets) {
  constexpr int per_thread = 500;
  watch("conc");
  std::vector<std::thread> ts;
  std::mutex m;
  std::vector<std::uint64_t> all;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        auto msg = publish("conc");
        std::lock_guard lock(m);
        all.push_back(msg->offset());
      }
    });
  for (auto& t : ts) t.join();
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 4u * per_thread);
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
  auto got = seen("conc", all.size());
  ASSERT_EQ(got.size(), all.size());
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1) << "listener saw the channel out of order";
}


// One-time values (connection tickets).

namespace {
std::optional<util::api_error> put(core::broker& b, const std::string& key, const std::string& value,
                                   std::chrono::milliseconds ttl) {
  std::promise<std::optional<util::api_error>> p;
  b.put_once(key, value, ttl, [&](std::optional<util::api_error> e) { p.set_value(std::move(e)); });
  return p.get_future().get();
}
core::broker::take_result take(core::broker& b, const std::string& key) {
  std::promise<core::broker::take_result> p;
  b.take_once(key, [&](core::broker::take_result r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}
}  // namespace

TEST_P(BrokerContract, OnceValueIsTakenExactlyOnce) {
  ASSERT_FALSE(put(broker(), "t:once", "grants", std::chrono::seconds(10)));
  auto first = take(broker(), "t:once");
  ASSERT_TRUE(std::holds_alternative<std::optional<std::string>>(first));
  EXPECT_EQ(std::get<std::optional<std::string>>(first), "grants");
  auto second = take(broker(), "t:once");
  ASSERT_TRUE(std::holds_alternative<std::optional<std::string>>(second));
  EXPECT_FALSE(std::get<std::optional<std::string>>(second).has_value());
}

TEST_P(BrokerContract, OnceValueUnknownOrExpiredIsNotFound) {
  auto unknown = take(broker(), "t:never-put");
  ASSERT_TRUE(std::holds_alternative<std::optional<std::string>>(unknown));
  EXPECT_FALSE(std::get<std::optional<std::string>>(unknown).has_value());
  ASSERT_FALSE(put(broker(), "t:short", "x", std::chrono::milliseconds(50)));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto expired = take(broker(), "t:short");
  ASSERT_TRUE(std::holds_alternative<std::optional<std::string>>(expired));
  EXPECT_FALSE(std::get<std::optional<std::string>>(expired).has_value());
}

namespace {
core::broker::lease_result lease(core::broker& b, const std::string& key, const std::string& holder,
                                 std::chrono::milliseconds ttl) {
  std::promise<core::broker::lease_result> p;
  b.lease(key, holder, ttl, [&](core::broker::lease_result r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}
bool held(const core::broker::lease_result& r) { return std::holds_alternative<bool>(r) && std::get<bool>(r); }
bool refused(const core::broker::lease_result& r) { return std::holds_alternative<bool>(r) && !std::get<bool>(r); }
}  // namespace

TEST_P(BrokerContract, ALeaseHasOneHolderUntilReleasedOrExpired) {
  EXPECT_TRUE(held(lease(broker(), "t:lease", "a", std::chrono::seconds(10))));
  EXPECT_TRUE(held(lease(broker(), "t:lease", "a", std::chrono::seconds(10)))) << "its holder renews it";
  EXPECT_TRUE(refused(lease(broker(), "t:lease", "b", std::chrono::seconds(10))));
  broker().release_lease("t:lease", "b");  // not b's: nothing happens
  EXPECT_TRUE(refused(lease(broker(), "t:lease", "b", std::chrono::seconds(10))));
  broker().release_lease("t:lease", "a");
  // release has no reply: the next lease on the same broker comes after it (one connection, FIFO).
  EXPECT_TRUE(held(lease(broker(), "t:lease", "b", std::chrono::milliseconds(50))));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_TRUE(held(lease(broker(), "t:lease", "a", std::chrono::seconds(10)))) << "b's lease expired";
}

TEST_P(BrokerContract, OnceValueConcurrentTakersOnlyOneWins) {
  ASSERT_FALSE(put(broker(), "t:race", "v", std::chrono::seconds(10)));
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      auto r = take(broker(), "t:race");
      if (auto* v = std::get_if<std::optional<std::string>>(&r); v && v->has_value()) ++winners;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

// channels() answers through its callback (the Redis broker on its own thread: it must
// not block the event loop that asked).
TEST_P(BrokerContract, ChannelsAnswerThroughTheCallback) {
  watch("listed");
  publish("listed");
  std::promise<std::vector<core::channel_summary>> p;
  broker().channels([&](std::vector<core::channel_summary> list) { p.set_value(std::move(list)); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto list = f.get();
  EXPECT_TRUE(std::any_of(list.begin(), list.end(), [](const auto& c) { return c.channel == "listed"; }));
}

// The rule exact resume rests on (core/broker.hpp): a history read issued after watch(c)
// covers every publication of c that the listener will not see. Publishers run while the
// channel is watched at an arbitrary moment; history read then, plus what the listener
// got, must hold every offset.
TEST_P(BrokerContract, AHistoryReadAfterWatchCoversWhatTheListenerMisses) {
  constexpr std::uint64_t n = 600;
  for (int round = 0; round < 4; ++round) {
    const std::string channel = "race:c" + std::to_string(round);
    std::atomic<std::uint64_t> published{0};
    std::thread publisher([&] {
      for (std::uint64_t i = 0; i < n; ++i) {
        publish(channel);
        published.store(i + 1, std::memory_order_relaxed);
      }
    });
    // Watch somewhere in the middle of the stream (a different point each round).
    while (published.load(std::memory_order_relaxed) < n / 5 * (round + 1)) std::this_thread::yield();
    broker().watch(channel);
    auto read = history(channel, std::nullopt, n);
    publisher.join();
    ASSERT_TRUE(std::holds_alternative<core::history_reply>(read));
    std::vector<bool> have(n + 1, false);
    for (auto& m : std::get<core::history_reply>(read).messages) have[m->offset()] = true;
    std::vector<std::uint64_t> live;  // the last publication comes live (watched by then)
    for (int i = 0; i < 500 && (live.empty() || live.back() != n); ++i) {
      live = seen(channel, 0);
      if (live.empty() || live.back() != n) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto o : live) have[o] = true;
    std::uint64_t missing = 0;
    for (std::uint64_t o = 1; o <= n; ++o) missing += !have[o];
    EXPECT_EQ(missing, 0u) << "round " << round << ": offsets neither in the read nor seen live";
    broker().unwatch(channel);
  }
}


TEST_P(BrokerContract, SignalsReachTheListenerAndLeaveNoTrace) {
  watch("sig");
  publish("sig", "\"before\"");
  auto signal = [&](protocol::message_kind kind, const std::string& body, const std::string& event = "") {
    std::promise<std::optional<util::api_error>> p;
    broker().signal(std::make_shared<protocol::message>(kind, "sig", 1795851218010, event, body),
                    [&](std::optional<util::api_error> e) { p.set_value(std::move(e)); });
    EXPECT_FALSE(p.get_future().get().has_value());
  };
  signal(protocol::message_kind::ephemeral, R"({"typing":true})", "typing");
  signal(protocol::message_kind::join, R"({"user":"u 1","client":"c.1","transport":"ws"})");
  signal(protocol::message_kind::leave, R"({"user":"u 1","client":"c.1","transport":"ws"})");
  publish("sig", "\"after\"");
  // Every node watching the channel sees them (this one, through Pub/Sub with Redis)...
  std::vector<protocol::message_ptr> got;
  for (int i = 0; i < 500 && got.size() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard lock(listener_.m);
    got.clear();
    for (auto& m : listener_.got)
      if (m->channel() == "sig") got.push_back(m);
  }
  ASSERT_EQ(got.size(), 5u);
  std::vector<protocol::message_ptr> signals;
  for (auto& m : got)
    if (m->is_signal()) signals.push_back(m);
  ASSERT_EQ(signals.size(), 3u);
  EXPECT_EQ(signals[0]->kind(), protocol::message_kind::ephemeral);
  EXPECT_EQ(signals[0]->data_json(), R"({"typing":true})");
  EXPECT_EQ(signals[0]->event(), "typing");
  EXPECT_EQ(signals[0]->offset(), 0u);
  EXPECT_TRUE(signals[0]->cursor().empty());
  EXPECT_EQ(signals[1]->json(), R"({"join":{"channel":"sig","user":"u 1","client":"c.1","transport":"ws"}})");
  EXPECT_EQ(signals[2]->json(), R"({"leave":{"channel":"sig","user":"u 1","client":"c.1","transport":"ws"}})");
  // ...and history holds only the publications, whose offsets stay gap-free.
  auto r = history("sig", core::position{got[0]->epoch(), 0});
  auto& reply = std::get<core::history_reply>(r);
  ASSERT_EQ(reply.messages.size(), 2u);
  EXPECT_EQ(reply.messages[0]->offset(), 1u);
  EXPECT_EQ(reply.messages[1]->offset(), 2u);
  EXPECT_EQ(reply.top, 2u);
}

TEST_P(BrokerContract, ASignalCreatesNoChannel) {
  std::promise<std::optional<util::api_error>> p;
  broker().signal(std::make_shared<protocol::message>(protocol::message_kind::ephemeral, "nochan", 1, "", "1"),
                  [&](std::optional<util::api_error> e) { p.set_value(std::move(e)); });
  EXPECT_FALSE(p.get_future().get().has_value());
  auto r = history("nochan", std::nullopt);
  EXPECT_EQ(std::get<core::history_reply>(r).epoch, 0u);
  EXPECT_EQ(std::get<core::history_reply>(r).top, 0u);
}

}  // namespace herald::test
