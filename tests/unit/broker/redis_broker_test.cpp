// The broker contract against the Redis broker and a real redis-server (started per
// test on a free loopback port). Skipped, saying so, when redis-server is not installed.
#include "broker/redis/redis_broker.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "broker/broker_contract.hpp"

extern char** environ;

namespace herald::test {
namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A redis-server child process on a free port, without persistence.
struct redis_process {
  pid_t pid = -1;
  int port = 0;
  bool start() {
    port = free_port();
    std::string p = std::to_string(port);
    const char* argv[] = {"redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--loglevel", "warning", nullptr};
    if (posix_spawnp(&pid, "redis-server", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return false;
    for (int i = 0; i < 200; ++i) {
      if (can_connect(port)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  ~redis_process() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

bool redis_available() { return ::system("command -v redis-server >/dev/null 2>&1") == 0; }

broker_fixture make_redis_broker(const core::namespace_table& ns) {
  if (!redis_available()) return {};
  auto redis = std::make_shared<redis_process>();
  if (!redis->start()) return {};
  broker::redis_broker_options opts;
  opts.shards = {{"127.0.0.1", redis->port}};
  auto b = std::make_unique<broker::redis_broker>(ns, opts);
  b->start();
  for (int i = 0; i < 300 && !b->ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto* raw = b.get();
  return {std::move(b), [raw, redis] { raw->stop(); }};
}

// A Redis broker of its own (not through the contract fixture), for the tests below.
struct redis_node {
  std::shared_ptr<redis_process> redis = std::make_shared<redis_process>();
  core::namespace_table ns;
  std::unique_ptr<broker::redis_broker> b;
  collecting_listener listener;
  bool start() {
    if (!redis_available() || !redis->start()) return false;
    broker::redis_broker_options opts;
    opts.shards = {{"127.0.0.1", redis->port}};
    b = std::make_unique<broker::redis_broker>(ns, opts);
    b->set_listener(&listener);
    b->start();
    for (int i = 0; i < 300 && !b->ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return b->ready();
  }
  ~redis_node() {
    if (b) b->stop();
  }
  // A history read of a watched channel completes once its SUBSCRIBE is confirmed.
  void history_of(const std::string& channel) {
    std::promise<void> p;
    b->history({channel, std::nullopt, 1}, [&](core::broker::history_result) { p.set_value(); });
    p.get_future().wait();
  }
  bool wait_entries(std::size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (b->subscription_entries() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

// Issue 11, finding 11: the connection's per-channel subscription state was kept for
// every channel ever watched (per-user channels grew it without bound).
TEST(RedisBroker, SubscriptionStateGoesWithTheChannel) {
  redis_node n;
  if (!n.start()) GTEST_SKIP() << "redis-server not available";
  constexpr int channels = 2000;
  for (int i = 0; i < channels; ++i) n.b->watch("user-" + std::to_string(i));
  n.history_of("user-" + std::to_string(channels - 1));
  EXPECT_TRUE(n.wait_entries(channels)) << n.b->subscription_entries();
  for (int i = 0; i < channels; ++i) n.b->unwatch("user-" + std::to_string(i));
  EXPECT_TRUE(n.wait_entries(0)) << n.b->subscription_entries() << " entries left after every channel was unwatched";
}

// The state must never be freed while hiredis may still call it (a use-after-free under
// churn was fixed once): watch and unwatch one channel many times in a row, so that
// UNSUBSCRIBE replies arrive while later SUBSCRIBEs are unconfirmed. The node must end
// subscribed and delivering, with one entry; then unwatched, with none.
TEST(RedisBroker, ChurnOnOneChannelKeepsItsSubscription) {
  redis_node n;
  if (!n.start()) GTEST_SKIP() << "redis-server not available";
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 200; ++i) {
      n.b->watch("churn");
      n.b->unwatch("churn");
    }
    n.b->watch("churn");
    n.history_of("churn");
    std::promise<void> published;
    n.b->publish({"churn", "", std::to_string(round)}, [&](core::broker::publish_result) { published.set_value(); });
    published.get_future().wait();
    bool got = false;
    for (int i = 0; i < 300 && !got; ++i) {
      {
        std::lock_guard lock(n.listener.m);
        for (auto& m : n.listener.got) got = got || m->data_json() == std::to_string(round);
      }
      if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(got) << "round " << round << ": the publication did not arrive through Pub/Sub";
    EXPECT_EQ(n.b->subscription_entries(), 1u);
    n.b->unwatch("churn");
  }
  EXPECT_TRUE(n.wait_entries(0)) << n.b->subscription_entries();
}

// Streams: a stop asked on one node reaches every node's listener through the control
// channel; the asking node learns whether the end got published.
struct stop_listener final : core::publication_listener {
  std::mutex m;
  std::vector<std::string> stops;
  void on_publication(const protocol::message_ptr&) override {}
  void on_resync(const std::string&) override {}
  void on_stop_request(const std::string& channel, const std::string& reason) override {
    std::lock_guard lock(m);
    stops.push_back(channel + "|" + reason);
  }
};

TEST(RedisBroker, StopRemoteReachesTheOtherNodesAndWaitsForTheEnd) {
  redis_node a;
  if (!a.start()) GTEST_SKIP() << "redis-server not available";
  broker::redis_broker_options opts;
  opts.shards = {{"127.0.0.1", a.redis->port}};
  broker::redis_broker b(a.ns, opts);
  stop_listener heard;
  b.set_listener(&heard);
  b.start();
  for (int i = 0; i < 300 && !b.ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both control SUBSCRIBEs confirmed
  std::promise<bool> nobody;
  a.b->stop_remote("ai:1", "user", [&](bool ended) { nobody.set_value(ended); });
  EXPECT_FALSE(nobody.get_future().get());  // heard, but nobody ended it within the wait
  {
    std::lock_guard lock(heard.m);
    EXPECT_EQ(heard.stops, (std::vector<std::string>{"ai:1|user"}));
  }
  std::promise<bool> ended;
  a.b->stop_remote("ai:2", "", [&](bool e) { ended.set_value(e); });
  std::promise<void> published;
  b.publish({"ai:2", "end", R"({"state":"aborted","reason":null})"},
            [&](core::broker::publish_result) { published.set_value(); });
  published.get_future().wait();
  EXPECT_TRUE(ended.get_future().get());
  b.stop();
}

// Lost writes (issue 16): a channel last written under another primary (its meta hash's
// `g` is not the replication ID of the server the script runs on, as after a failover to
// a replica that missed the last publications) may have lost writes: a cursor past its
// top is a reset, not a 400, and the next publish starts a new epoch (offsets go on)
// instead of handing out an offset a lost message had under the old one.
TEST(RedisBroker, AChannelLastWrittenUnderAnotherPrimaryStartsANewEpoch) {
  redis_node n;
  if (!n.start()) GTEST_SKIP() << "redis-server not available";
  auto publish = [&](const std::string& data) {
    std::promise<core::broker::publish_result> p;
    n.b->publish({"lw", "", data}, [&](core::broker::publish_result r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(std::holds_alternative<protocol::message_ptr>(r));
    return std::get<protocol::message_ptr>(r);
  };
  auto read = [&](core::position since) {
    std::promise<core::broker::history_result> p;
    n.b->history({"lw", since, 10}, [&](core::broker::history_result r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  for (int i = 1; i <= 3; ++i) publish(std::to_string(i));
  const auto e1 = publish("4")->epoch();
  // Under the same primary a cursor past the top is malformed (400)...
  auto ahead = read({e1, 6});
  ASSERT_TRUE(std::holds_alternative<util::api_error>(ahead));
  EXPECT_EQ(std::get<util::api_error>(ahead).status, 400);
  // ...but not once the channel was last written under another one.
  const std::string cmd = "redis-cli -p " + std::to_string(n.redis->port) + " HSET 'herald:{lw}:m' g other-primary >/dev/null";
  ASSERT_EQ(::system(cmd.c_str()), 0);
  auto lost = read({e1, 6});
  ASSERT_TRUE(std::holds_alternative<core::history_reply>(lost));
  EXPECT_FALSE(std::get<core::history_reply>(lost).recovered);
  EXPECT_EQ(std::get<core::history_reply>(lost).top, 4u);
  // What the server holds is still served under the old epoch until the next publish.
  auto held = read({e1, 2});
  ASSERT_TRUE(std::holds_alternative<core::history_reply>(held));
  EXPECT_TRUE(std::get<core::history_reply>(held).recovered);
  EXPECT_EQ(std::get<core::history_reply>(held).messages.size(), 2u);
  // The next publish: a new epoch, the offsets go on; cursors of the old epoch reset.
  auto m = publish("5");
  EXPECT_NE(m->epoch(), e1);
  EXPECT_EQ(m->offset(), 5u);
  // A cursor of the old epoch at or before what this primary held of it (4) reads on
  // under the new one; past it (a lost write's offset) it is a reset.
  auto kept = read({e1, 3});
  ASSERT_TRUE(std::holds_alternative<core::history_reply>(kept));
  EXPECT_TRUE(std::get<core::history_reply>(kept).recovered);
  ASSERT_EQ(std::get<core::history_reply>(kept).messages.size(), 2u);
  EXPECT_EQ(std::get<core::history_reply>(kept).messages[0]->offset(), 4u);
  EXPECT_EQ(std::get<core::history_reply>(kept).epoch, m->epoch());
  auto old = read({e1, 5});
  ASSERT_TRUE(std::holds_alternative<core::history_reply>(old));
  EXPECT_FALSE(std::get<core::history_reply>(old).recovered);
  // ...whose position is where the kept offsets end: what the new epoch holds follows.
  EXPECT_EQ(std::get<core::history_reply>(old).top, 4u);
  EXPECT_EQ(std::get<core::history_reply>(old).epoch, m->epoch());
  // And from then on the channel is this primary's: publishes keep the epoch.
  EXPECT_EQ(publish("6")->epoch(), m->epoch());
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Redis, BrokerContract, ::testing::Values(broker_factory{"redis", make_redis_broker}),
                         [](const auto& info) { return info.param.name; });

}  // namespace herald::test
