#pragma once
// The Redis broker: offsets, epochs and history live in Redis, so any node can resume
// any cursor; publications reach every node through Redis Pub/Sub.
//
// - A publish is one Lua script (offset, history append and trim, PUBLISH), so it is
//   atomic; it is answered 503 at once when Redis is unreachable.
// - A node SUBSCRIBEs to a channel only while it has local subscribers (watch/unwatch),
//   on a connection of its own per shard; commands are pipelined by hiredis.
// - History reads for a channel wait until its SUBSCRIBE is confirmed, so a publication
//   is either in the read or delivered live (the resume race stays closed across nodes).
// - After a lost Pub/Sub connection the node resubscribes and tells the hub to re-sync
//   every watched channel from history; a gap history cannot cover becomes a reset.
// - Channels are spread over shards by a stable hash of the name.
//
// All Redis I/O runs on one broker thread with its own io_context.
#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>

#include "broker/redis/redis_broker_options.hpp"
#include "core/broker.hpp"
#include "core/namespace_options.hpp"
#include "core/presence.hpp"

struct redisReply;

namespace herald::broker {

class redis_connection;
class redis_presence;

class redis_broker final : public core::broker {
 public:
  redis_broker(const core::namespace_table& namespaces, redis_broker_options opts);
  ~redis_broker() override;

  /// Starts the broker thread and the connections (they retry until Redis answers).
  void start();
  void stop();

  /// The SHA-1 of a Lua script in hex, the name EVALSHA calls it by (redis_presence too).
  static std::string script_sha(std::string_view script);

  void set_listener(core::publication_listener* listener) override { listener_ = listener; }
  void publish(core::publish_request req, std::function<void(publish_result)> done) override;
  void history(core::history_query q, std::function<void(history_result)> done) override;
  /// A plain PUBLISH on the channel's Pub/Sub name (redis_signals.cpp), no script.
  void signal(core::message_ptr m, std::function<void(std::optional<util::api_error>)> done) override;
  void put_once(std::string key, std::string value, std::chrono::milliseconds ttl,
                std::function<void(std::optional<util::api_error>)> done) override;
  void take_once(std::string key, std::function<void(take_result)> done) override;
  /// One script per call (redis_lease.cpp): take or renew, compare-and-delete.
  void lease(std::string key, std::string holder, std::chrono::milliseconds ttl,
             std::function<void(lease_result)> done) override;
  void release_lease(std::string key, std::string holder) override;
  void watch(const std::string& channel) override;
  void unwatch(const std::string& channel) override;
  bool ready() const override;
  void channels(std::function<void(std::vector<core::channel_summary>)> done) const override;
  core::broker_stats stats() const override;
  /// PUBLISH on the control channel herald:ctl:stop (every node subscribes to it on
  /// shard 0), then checks the channel's end flag every 50 ms for about a second.
  void stop_remote(const std::string& channel, const std::string& reason, std::function<void(bool)> done) override;
  /// PUBLISH on the control channel herald:ctl:user: "<node id> <payload>"; every node
  /// but this one hands the payload to its listener (redis_users.cpp).
  void user_command_remote(const std::string& payload, std::function<void(bool)> done) override;
  /// Shares `local`'s presence with every node through Redis (redis_presence.hpp) and
  /// returns the mirror to give it (presence_registry::set_mirror). Call before start().
  core::presence_mirror* share_presence(core::presence_registry& local);

  // For redis_presence (broker thread only):
  boost::asio::io_context& io() noexcept { return ioc_; }
  std::size_t shard_count() const noexcept { return shards_.size(); }
  /// The shard of a channel (or any key routed like one).
  std::size_t shard_index(const std::string& key) const;
  /// Sends a command on a shard's command connection; `fn(nullptr)` when it is down.
  void command_on(std::size_t shard, std::vector<std::string> args, std::function<void(::redisReply*)> fn);
  /// EVALSHA `sha` with `tail` (numkeys, keys, args), falling back to EVAL of `script`
  /// (which caches it) after a Redis restart; `fn(nullptr)` when the shard is down.
  void eval_on(std::size_t shard, const char* script, const std::string& sha, std::vector<std::string> tail,
               std::function<void(::redisReply*)> fn);
  const core::namespace_table& namespaces() const noexcept { return namespaces_; }

  /// Channels with Pub/Sub callback state on the connections (watched, or being
  /// unsubscribed): follows the watched channels, never the channels ever watched.
  /// Safe from any thread while the broker runs (not during stop()).
  std::size_t subscription_entries() const;

 private:
  struct shard;
  struct watched;

  shard& shard_for(const std::string& channel);
  static bool usable(const shard& s);
  void check_primary(shard& s, std::size_t index, std::function<void()> update_ready);
  void eval(shard& s, int script, std::vector<std::string> args, std::function<void(::redisReply*)> fn);
  void run_history(core::history_query q, std::function<void(history_result)> done);
  void subscribe_on(shard& s, const std::string& channel);
  void on_pubsub(shard& s, ::redisReply* r);
  void on_pubsub_up(shard& s);
  void on_control(::redisReply* r);
  void await_end(std::string channel, int tries_left, std::function<void(bool)> done);
  std::string epoch_candidate();

  const core::namespace_table& namespaces_;
  redis_broker_options opts_;
  core::publication_listener* listener_ = nullptr;
  boost::asio::io_context ioc_{1};
  std::unique_ptr<redis_presence> presence_;  // shared presence, when enabled
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::mt19937 rng_{std::random_device{}()};
  std::string script_sha_[2];
  std::atomic<std::size_t> ready_shards_{0};
  std::atomic<std::size_t> watched_count_{0};
  bool stopping_ = false;  // broker thread only
  std::atomic<bool> control_subscribed_{false};  // herald:ctl:stop and herald:ctl:user have their entries on shard 0
  void on_user_control(redisReply* r);
  static std::string new_node_id();
  const std::string node_id_;  // tells this node's own users-API commands apart
};

}  // namespace herald::broker
