#pragma once
// The in-memory broker (the default): offsets, epochs and history live in this process.
//
// Channels are kept in a sharded map; each channel has its own lock, held while a
// publish assigns the offset, appends to history and hands the message to the listener,
// so that listeners see each channel in offset order. A channel's epoch is drawn at
// random when the channel is created, so a restart (or a reclaimed channel) changes it
// and old cursors are answered with "not recovered".
//
// Memory is bounded: each channel's history by its namespace's size and age limits,
// the number of channels by `max_channels`; sweep() expires old messages and drops
// channels that have no history left, no subscribers and no activity for `idle_ttl`.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>

#include "broker/memory/memory_broker_options.hpp"
#include "core/broker.hpp"
#include "core/history.hpp"
#include "core/namespace_options.hpp"

namespace herald::broker {

class memory_broker final : public core::broker {
 public:
  /// `has_subscribers` tells whether a channel has local subscribers (the hub).
  memory_broker(const core::namespace_table& namespaces, memory_broker_options opts,
                std::function<bool(std::string_view)> has_subscribers);
  ~memory_broker() override;

  void set_listener(core::publication_listener* listener) override { listener_ = listener; }
  void publish(core::publish_request req, std::function<void(publish_result)> done) override;
  void history(core::history_query q, std::function<void(history_result)> done) override;
  /// Inline: the listener is called on the caller's thread, no channel lock is taken.
  void signal(core::message_ptr m, std::function<void(std::optional<util::api_error>)> done) override {
    if (listener_) listener_->on_publication(m);
    done(std::nullopt);
  }
  void watch(const std::string&) override {}
  void unwatch(const std::string&) override {}
  void put_once(std::string key, std::string value, std::chrono::milliseconds ttl,
                std::function<void(std::optional<util::api_error>)> done) override;
  void take_once(std::string key, std::function<void(take_result)> done) override;
  void lease(std::string key, std::string holder, std::chrono::milliseconds ttl,
             std::function<void(lease_result)> done) override;
  void release_lease(std::string key, std::string holder) override;
  bool ready() const override { return true; }
  void channels(std::function<void(std::vector<core::channel_summary>)> done) const override;
  core::broker_stats stats() const override;

  /// One-time values held at most (tickets outstanding at once).
  static constexpr std::size_t max_once_values = 1'000'000;

  /// Expires history and one-time values and reclaims idle channels; the server calls
  /// it periodically.
  /// Returns the number of channels reclaimed.
  std::size_t sweep();

 private:
  struct channel;
  struct shard;
  static constexpr std::size_t shard_count = 64;

  shard& shard_for(std::string_view name) const;
  std::vector<std::shared_ptr<channel>> snapshot(std::size_t shard) const;
  std::shared_ptr<channel> find(const std::string& name) const;
  std::shared_ptr<channel> find_or_create(const std::string& name, util::api_error& err);
  std::uint32_t new_epoch();

  const core::namespace_table& namespaces_;
  memory_broker_options opts_;
  std::function<bool(std::string_view)> has_subscribers_;
  core::publication_listener* listener_ = nullptr;
  std::unique_ptr<shard[]> shards_;
  std::atomic<std::size_t> channel_count_{0};
  // Running totals of every channel's history, kept by each change (stats() walks
  // nothing: a scrape of 200k channels took 0.18 s and delayed publishes).
  alignas(64) std::atomic<std::int64_t> history_messages_{0};  // written by every publish
  std::atomic<std::int64_t> history_bytes_{0};
  friend struct history_change;
  std::mutex rng_mutex_;
  std::mt19937 rng_;
  struct once_value {
    std::string value;
    std::int64_t expires_ms;
  };
  std::mutex once_mutex_;
  std::unordered_map<std::string, once_value> once_;
  std::unordered_map<std::string, once_value> leases_;  // value: the holder (once_mutex_)
};

}  // namespace herald::broker
