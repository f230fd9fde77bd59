// The presence registry: counts (users once, anonymous counted not listed), listings
// bounded by their limit, and join/leave on a user's first and last connection only.
#include "core/presence.hpp"

#include <gtest/gtest.h>

#include "broker/memory/memory_broker.hpp"

using namespace herald;

namespace {

struct signal_log final : core::publication_listener {
  std::vector<protocol::message_ptr> got;
  void on_publication(const protocol::message_ptr& m) override { got.push_back(m); }
  void on_resync(const std::string&) override {}
};

struct presence_fixture : ::testing::Test {
  core::namespace_table ns;
  signal_log log;
  std::unique_ptr<broker::memory_broker> broker;
  std::unique_ptr<core::presence_registry> reg;

  void SetUp() override {
    core::namespace_options p;
    p.presence = true;
    ns.set("room", p);
    p.join_leave = true;
    ns.set("chat", p);
    core::namespace_options only_events;
    only_events.join_leave = true;
    ns.set("events", only_events);
    broker = std::make_unique<broker::memory_broker>(ns, broker::memory_broker_options{},
                                                     [](std::string_view) { return true; });
    broker->set_listener(&log);
    reg = std::make_unique<core::presence_registry>(ns, broker.get());
  }
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    for (auto& m : log.got) out.push_back(m->json());
    return out;
  }
};

}  // namespace

TEST_F(presence_fixture, TracksOnlyNamespacesWithPresenceOrJoinLeave) {
  EXPECT_TRUE(reg->tracks("room:1"));
  EXPECT_TRUE(reg->tracks("chat:1"));
  EXPECT_TRUE(reg->tracks("events:1"));
  EXPECT_FALSE(reg->tracks("news"));
  EXPECT_FALSE(reg->tracks("other:1"));
}

TEST_F(presence_fixture, AUserWithThreeTabsCountsOnceAnonymousClientsAreCountedNotListed) {
  reg->enter("room:1", "c1", "alice", core::transport::ws);
  reg->enter("room:1", "c2", "alice", core::transport::sse);
  reg->enter("room:1", "c3", "alice", core::transport::poll);
  reg->enter("room:1", "c4", "bob", core::transport::ws);
  reg->enter("room:1", "a1", "", core::transport::ws);
  reg->enter("room:1", "a2", "", core::transport::sse);
  auto s = reg->snapshot("room:1", 100);
  EXPECT_EQ(s.users, 2u);
  EXPECT_EQ(s.connections, 6u);
  EXPECT_EQ(s.anonymous, 2u);
  EXPECT_EQ(s.clients.size(), 4u);
  EXPECT_FALSE(s.truncated);
  EXPECT_EQ(reg->connections(), 6u);
  reg->exit("room:1", "c1", "alice");
  reg->exit("room:1", "c2", "alice");
  EXPECT_EQ(reg->snapshot("room:1", 100).users, 2u);
  reg->exit("room:1", "c3", "alice");
  reg->exit("room:1", "a1", "");
  s = reg->snapshot("room:1", 100);
  EXPECT_EQ(s.users, 1u);
  EXPECT_EQ(s.connections, 2u);
  ASSERT_EQ(s.clients.size(), 1u);
  EXPECT_EQ(s.clients[0].user, "bob");
  EXPECT_TRUE(events().empty()) << "room has presence without join_leave";
}

TEST_F(presence_fixture, ListingsAreBoundedByTheirLimitCountsAreNot) {
  for (int i = 0; i < 50; ++i) reg->enter("room:big", "c" + std::to_string(i), "u" + std::to_string(i), core::transport::ws);
  auto s = reg->snapshot("room:big", 10);
  EXPECT_EQ(s.clients.size(), 10u);
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.users, 50u);
  EXPECT_EQ(s.connections, 50u);
  auto j = core::presence_registry::to_json(reg->snapshot("room:big", 0));
  EXPECT_EQ(j, R"({"clients":[],"users":50,"connections":50,"anonymous":0,"truncated":true})");
}

TEST_F(presence_fixture, JoinOnTheFirstConnectionOfAUserLeaveOnItsLast) {
  reg->enter("chat:1", "c1", "alice", core::transport::ws);
  reg->enter("chat:1", "c2", "alice", core::transport::sse);
  reg->enter("chat:1", "a1", "", core::transport::ws);  // anonymous: no event
  reg->exit("chat:1", "c1", "alice");
  reg->exit("chat:1", "a1", "");
  ASSERT_EQ(events().size(), 1u);
  EXPECT_EQ(events()[0], R"({"join":{"channel":"chat:1","user":"alice","client":"c1","transport":"ws"}})");
  reg->exit("chat:1", "c2", "alice");
  ASSERT_EQ(events().size(), 2u);
  EXPECT_EQ(events()[1], R"({"leave":{"channel":"chat:1","user":"alice","client":"c2","transport":"sse"}})");
  EXPECT_EQ(reg->channels(), 0u) << "an empty channel is forgotten";
}

TEST_F(presence_fixture, UnknownExitsAndRepeatedEntersChangeNothing) {
  reg->exit("chat:1", "nobody", "x");
  reg->exit("chat:1", "nobody", "");
  reg->enter("chat:1", "c1", "alice", core::transport::ws);
  reg->enter("chat:1", "c1", "alice", core::transport::ws);
  EXPECT_EQ(reg->snapshot("chat:1", 10).connections, 1u);
  EXPECT_EQ(reg->connections(), 1u);
  reg->exit("chat:1", "c9", "alice");  // another connection of alice that never entered
  EXPECT_EQ(reg->snapshot("chat:1", 10).users, 1u);
  EXPECT_EQ(events().size(), 1u);
}

TEST_F(presence_fixture, UserNamesAreQuotedInJson) {
  reg->enter("chat:q", "c1", "a\"b\\c", core::transport::poll);
  EXPECT_EQ(events().at(0), R"({"join":{"channel":"chat:q","user":"a\"b\\c","client":"c1","transport":"poll"}})");
  auto j = core::presence_registry::to_json(reg->snapshot("chat:q", 10));
  EXPECT_EQ(j, R"({"clients":[{"client":"c1","user":"a\"b\\c","transport":"poll"}],"users":1,"connections":1,"anonymous":0})");
}

TEST_F(presence_fixture, ClientIdsAreDistinctAndCarryANodePrefix) {
  auto a = reg->next_client_id(), b = reg->next_client_id();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(0, 9), b.substr(0, 9));
  EXPECT_EQ(a[8], '.');
}
