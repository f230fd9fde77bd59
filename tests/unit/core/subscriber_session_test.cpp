#include "core/subscriber_session.hpp"

#include <gtest/gtest.h>

#include <random>

#include "broker/memory/memory_broker.hpp"
#include "core/test_threads.hpp"

using namespace herald;
using protocol::message_ptr;

namespace {

struct recording_session final : core::subscriber_session {
  using core::subscriber_session::subscriber_session;
  std::vector<std::pair<std::string, std::uint64_t>> got;
  std::vector<std::string> resets;
  std::vector<std::string> log;  // "reset", "msg", "synced" in call order
  std::size_t accept_max = SIZE_MAX;

  void on_reset(std::span<const std::string> channels) override {
    resets.insert(resets.end(), channels.begin(), channels.end());
    log.push_back("reset");
  }
  bool on_message(const message_ptr& m, bool) override {
    if (got.size() >= accept_max) return false;
    got.emplace_back(m->channel(), m->offset());
    log.push_back("msg");
    return true;
  }
  void on_synced() override { log.push_back("synced"); }
  void on_error(const std::string&, const util::api_error& e) override { log.push_back("error:" + e.code); }
  void on_signal(const message_ptr& m) override { log.push_back("signal:" + std::string(m->data_json())); }

  std::vector<std::uint64_t> offsets(const std::string& channel) const {
    std::vector<std::uint64_t> out;
    for (auto& [c, o] : got)
      if (c == channel) out.push_back(o);
    return out;
  }
};

struct SessionTest : ::testing::Test {
  test::manual_threads threads{2};
  core::hub hub{threads.posters()};
  core::namespace_table ns;
  std::unique_ptr<broker::memory_broker> broker;
  std::unique_ptr<core::context> ctx;

  void SetUp() override {
    core::namespace_options small;
    small.history_size = 5;
    ns.set("small", small);
    broker = std::make_unique<broker::memory_broker>(ns, broker::memory_broker_options{},
                                                     [this](std::string_view c) { return hub.has_subscribers(c); });
    broker->set_listener(&hub);
    hub.set_broker(broker.get());
    ctx = std::make_unique<core::context>(core::context{hub, *broker, ns});
    core::hub::set_current_thread(0);
  }

  message_ptr publish(const std::string& channel) {
    message_ptr out;
    broker->publish({channel, "", "0"}, [&](auto r) { out = std::get<message_ptr>(r); });
    return out;
  }
  std::shared_ptr<recording_session> session(unsigned t = 0) {
    return std::make_shared<recording_session>(*ctx, t, core::transport::sse);
  }
  static std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> v;
    for (auto i = from; i <= to; ++i) v.push_back(i);
    return v;
  }
};

std::vector<protocol::cursor_entry> at(const message_ptr& m) {
  return {{protocol::channel_tag(m->channel()), m->epoch(), m->offset()}};
}

}  // namespace

TEST_F(SessionTest, WithoutCursorStartsAtNowAndReceivesLiveMessages) {
  publish("c");
  publish("c");
  auto s = session();
  std::vector<std::string> channels{"c"};
  s->subscribe(channels, {}, 100);
  EXPECT_EQ(s->log, (std::vector<std::string>{"synced"}));
  publish("c");
  threads.run_all();
  EXPECT_EQ(s->offsets("c"), (std::vector<std::uint64_t>{3}));
}

TEST_F(SessionTest, ReplayOverlappingQueuedLiveDeliveryYieldsEachOffsetOnce) {
  // A first subscriber makes thread 0 receive posts for "c"; publications 1..8 sit in
  // its queue, not yet delivered, when the second subscriber resumes from offset 2.
  auto early = session();
  std::vector<std::string> channels{"c"};
  early->subscribe(channels, {}, 100);
  message_ptr second;
  for (int i = 1; i <= 8; ++i) {
    auto m = publish("c");
    if (i == 2) second = m;
  }
  auto s = session();
  s->subscribe(channels, at(second), 100);
  EXPECT_EQ(s->offsets("c"), range(3, 8));  // replayed from history
  threads.run_all();                         // the queued live copies of 1..8 arrive
  publish("c");
  threads.run_all();
  EXPECT_EQ(s->offsets("c"), range(3, 9));
  EXPECT_TRUE(s->resets.empty());
}

TEST_F(SessionTest, ResetWhenHistoryNoLongerCoversTheGapThenLive) {
  auto first = publish("small:r");
  for (int i = 0; i < 9; ++i) publish("small:r");  // history keeps 6..10
  auto s = session();
  std::vector<std::string> channels{"small:r"};
  s->subscribe(channels, at(first), 100);
  EXPECT_EQ(s->resets, (std::vector<std::string>{"small:r"}));
  EXPECT_TRUE(s->got.empty());
  EXPECT_EQ(s->log, (std::vector<std::string>{"reset", "synced"}));
  publish("small:r");
  threads.run_all();
  EXPECT_EQ(s->offsets("small:r"), (std::vector<std::uint64_t>{11}));
}

TEST_F(SessionTest, OtherEpochResets) {
  auto m = publish("e");
  std::vector<protocol::cursor_entry> stale{{protocol::channel_tag("e"), m->epoch() ^ 1, 1}};
  auto s = session();
  std::vector<std::string> channels{"e"};
  s->subscribe(channels, stale, 100);
  EXPECT_EQ(s->resets, (std::vector<std::string>{"e"}));
}

TEST_F(SessionTest, MultiChannelCursorResumesEveryChannelExactly) {
  auto s1 = session();
  std::vector<std::string> channels{"a", "b"};
  s1->subscribe(channels, {}, 100);
  publish("a");
  publish("b");
  threads.run_all();
  auto cursor = protocol::decode_cursor(s1->cursor());
  ASSERT_TRUE(cursor);
  ASSERT_EQ(cursor->size(), 2u);
  s1.reset();  // disconnect
  publish("a");
  publish("b");
  publish("b");
  auto s2 = session(1);
  s2->subscribe(channels, *cursor, 100);
  EXPECT_EQ(s2->offsets("a"), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(s2->offsets("b"), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(s2->log.back(), "synced");
}

TEST_F(SessionTest, ResetsComeBeforeReplayedMessages) {
  auto old = publish("small:x");
  for (int i = 0; i < 9; ++i) publish("small:x");
  auto y = publish("y");
  publish("y");
  std::vector<protocol::cursor_entry> since = at(old);
  since.push_back(at(y)[0]);
  auto s = session();
  std::vector<std::string> channels{"y", "small:x"};
  s->subscribe(channels, since, 100);
  EXPECT_EQ(s->log, (std::vector<std::string>{"reset", "msg", "synced"}));
  EXPECT_EQ(s->offsets("y"), (std::vector<std::uint64_t>{2}));
}

TEST_F(SessionTest, RefusedMessageDoesNotAdvanceTheCursor) {
  auto s = session();
  s->accept_max = 2;
  std::vector<std::string> channels{"p"};
  s->subscribe(channels, {}, 100);
  for (int i = 0; i < 4; ++i) publish("p");
  threads.run_all();
  EXPECT_EQ(s->offsets("p"), (std::vector<std::uint64_t>{1, 2}));
  auto c = protocol::decode_cursor(s->cursor());
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)[0].offset, 2u);  // the next poll starts at 3
}

TEST_F(SessionTest, ForgedCursorIsReportedAsError) {
  auto m = publish("f");
  std::vector<protocol::cursor_entry> ahead{{protocol::channel_tag("f"), m->epoch(), 50}};
  auto s = session();
  std::vector<std::string> channels{"f"};
  s->subscribe(channels, ahead, 100);
  EXPECT_EQ(s->log, (std::vector<std::string>{"error:bad_cursor"}));
}

TEST_F(SessionTest, HundredsOfRandomResumesUnderPublishingLoseAndRepeatNothing) {
  // Interleaves publications, partial delivery of queued posts and resumes at random.
  std::mt19937 rng(7);
  std::vector<std::uint64_t> received;
  std::vector<protocol::cursor_entry> cursor;
  std::vector<std::string> channels{"race"};
  std::uint64_t published = 0;
  for (int round = 0; round < 400; ++round) {
    auto s = session(rng() % 2);
    s->subscribe(channels, cursor, 1000);
    for (int step = 0, n = static_cast<int>(rng() % 6); step < n; ++step) {
      for (int k = 0, m = static_cast<int>(rng() % 4); k < m; ++k, ++published) publish("race");
      unsigned t = rng() % 2;
      core::hub::set_current_thread(static_cast<int>(t));
      // Run part of a queue: some posts stay queued across the resume.
      for (int k = 0, m = static_cast<int>(rng() % 3); k < m && !threads.queues[t].empty(); ++k) {
        auto fn = std::move(threads.queues[t].front());
        threads.queues[t].pop_front();
        fn();
      }
    }
    for (auto o : s->offsets("race")) received.push_back(o);
    cursor = *protocol::decode_cursor(s->cursor());
    ASSERT_TRUE(s->resets.empty());
    core::hub::set_current_thread(0);
  }
  auto last = session();
  last->subscribe(channels, cursor, 100000);
  for (auto o : last->offsets("race")) received.push_back(o);
  EXPECT_EQ(received, range(1, published));
}

TEST_F(SessionTest, SignalsPassStraightThroughWithoutMovingTheCursorOrTriggeringAResync) {
  publish("c");
  auto s = session();
  std::vector<std::string> channels{"c"};
  s->subscribe(channels, {}, 100);
  const auto before = s->cursor();
  auto signal = [&](std::string data) {
    broker->signal(std::make_shared<protocol::message>(protocol::message_kind::ephemeral, "c", 1, "", data),
                   [](auto) {});
  };
  signal("1");
  publish("c");
  signal("2");
  threads.run_all();
  // Neither dropped as a duplicate (offset 0 is below the position) nor taken for a gap.
  EXPECT_EQ(s->log, (std::vector<std::string>{"synced", "signal:1", "msg", "signal:2"}));
  EXPECT_EQ(s->offsets("c"), (std::vector<std::uint64_t>{2}));
  EXPECT_NE(s->cursor(), before);  // moved by the publication only
  signal("3");
  threads.run_all();
  EXPECT_EQ(s->log.back(), "signal:3");
  EXPECT_EQ(std::count(s->log.begin(), s->log.end(), "synced"), 1) << "no re-sync";
}
