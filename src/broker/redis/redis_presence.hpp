#pragma once
// Presence shared by every node through Redis (docs/presence.md, "With several nodes").
//
// Keys of channel C (on C's shard, one hash slot through the {C} tag):
//   herald:{C}:pc        hash  client → "<transport> <user>"   identified connections
//   herald:{C}:pu        hash  user → connections              users = HLEN, O(1)
//   herald:{C}:pa        hash  node → anonymous connections
//   herald:{C}:pn:<node> set   the node's identified clients in C (to clean up after it)
// and of each node (on shard 0):
//   herald:nodes              set  node ids with presence entries
//   herald:node:<node>        heartbeat, PX node_ttl, refreshed every heartbeat_interval
//   herald:node:<node>:ch     set  channels where the node has entries
//
// - Join and leave are decided in Redis by the enter and exit scripts (a user's first and
//   last connection on any node) and PUBLISHed from there as signals
//   (redis_signals.hpp), so every node sees one join and one leave per user.
// - A node that dies stops its heartbeat; within node_ttl + heartbeat_interval another
//   node finds its heartbeat gone and runs the cleanup script on each of its channels:
//   its clients leave (with leave events where join_leave is on).
// - A Redis restart loses the keys; each node puts its own connections back when a
//   shard's command connection comes up again, one script per channel and up to 256
//   connections, announcing nothing (no join storm), idempotent when the keys survived.
//
// Runs on the broker thread; the mirror calls post there.
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "core/presence.hpp"

struct redisReply;

namespace herald::broker {

class redis_broker;

class redis_presence final : public core::presence_mirror {
 public:
  static constexpr std::chrono::milliseconds heartbeat_interval{2000};
  static constexpr std::chrono::milliseconds node_ttl{10000};

  redis_presence(redis_broker& broker, core::presence_registry& local);

  // core::presence_mirror (any thread)
  void entered(const std::string& channel, const std::string& client, const std::string& user, core::transport kind,
               bool announce, bool first_here) override;
  void exited(const std::string& channel, const std::string& client, const std::string& user, core::transport kind,
              bool announce, bool last_here) override;
  void snapshot(const std::string& channel, std::size_t limit, std::function<void(snapshot_result)> done) override;

  // Broker thread:
  void start();
  void stop();
  /// A shard's command connection is up (again): put this node's entries back there.
  void on_shard_up(std::size_t shard);

 private:
  /// Says this node is alive (the heartbeat key, the node set).
  void beat();
  /// beat(), reaps nodes whose heartbeat is gone, and comes back after heartbeat_interval.
  void heartbeat();
  void reap(const std::string& node);
  void eval(std::size_t shard, int script, std::vector<std::string> keys, std::vector<std::string> args,
            std::function<void(::redisReply*)> fn);

  redis_broker& broker_;
  core::presence_registry& local_;
  const std::string node_;
  boost::asio::steady_timer timer_;
  std::string sha_[5];  // of the scripts (redis_presence.cpp)
  bool stopped_ = false;
};

}  // namespace herald::broker
