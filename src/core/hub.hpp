#pragma once
// The hub: fan-out of publications to the subscribers of this node.
//
// Threading: one event-loop thread per core, each with its own subscription table that
// only that thread touches. A publication is handed once to each thread that has
// subscribers of its channel (a bit mask per channel, in a sharded registry), and that
// thread walks its local list. There is no global lock on the delivery path: the
// registry shard is locked only to read one mask per publication.
//
// Ordering: on_publication() is called by the broker in offset order per channel, and
// each thread's queue is FIFO, so every subscriber sees a channel's messages in order.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/broker.hpp"
#include "core/subscriber.hpp"
#include "util/string_hash.hpp"

namespace herald::core {

using util::string_hash;

using subscriber_counts = std::array<std::uint32_t, transport_count>;

class hub final : public publication_listener {
 public:
  /// Runs a function on one event-loop thread (FIFO).
  using poster = std::function<void(std::function<void()>)>;
  static constexpr unsigned max_threads = 64;

  explicit hub(std::vector<poster> threads);

  /// The broker to tell when a channel gains its first / loses its last subscriber.
  void set_broker(broker* b) noexcept { broker_ = b; }

  void on_publication(const message_ptr& m) override;
  void on_resync(const std::string& channel) override;
  void on_stop_request(const std::string& channel, const std::string& reason) override;
  /// Where stop requests from the broker go (the node's ingest registry); set once, before
  /// the broker starts.
  void set_stop_handler(std::function<void(const std::string&, const std::string&)> fn) { stop_handler_ = std::move(fn); }
  void on_user_command(const std::string& payload) override {
    if (user_handler_) user_handler_(payload);
  }
  /// Where users-API commands from other nodes go (the user registry); set once, before
  /// the broker starts.
  void set_user_handler(std::function<void(const std::string&)> fn) { user_handler_ = std::move(fn); }

  static constexpr std::uint32_t no_slot = ~std::uint32_t{0};
  /// Registers / removes `s` for `channel`; call on thread `t` only. subscribe() returns
  /// `s`'s slot in the thread's list (kept up to date through subscriber::hub_slot());
  /// unsubscribe() with that slot removes in constant time (any other value: a search).
  std::uint32_t subscribe(unsigned t, const std::string& channel, subscriber* s);
  void unsubscribe(unsigned t, const std::string& channel, subscriber* s, std::uint32_t slot = no_slot);

  /// Runs `fn` on thread `t`.
  void post(unsigned t, std::function<void()> fn) const { threads_[t](std::move(fn)); }
  /// Runs `fn` now when called on thread `t`, else posts it there (for callbacks that
  /// may come inline or from a broker thread).
  void run_on(unsigned t, std::function<void()> fn) const {
    if (current_thread() == static_cast<int>(t))
      fn();
    else
      post(t, std::move(fn));
  }

  bool has_subscribers(std::string_view channel) const;
  /// Subscribers of `channel` on this node, every transport.
  std::size_t subscriber_count(std::string_view channel) const;
  /// Subscriber counts per transport of every channel with subscribers on this node.
  std::vector<std::pair<std::string, subscriber_counts>> counts() const;

  /// The index of the calling event-loop thread (set by the transport at thread start);
  /// -1 on other threads.
  static int current_thread() noexcept;
  static void set_current_thread(int t) noexcept;

 private:
  struct registry_entry {
    std::uint64_t thread_mask = 0;
    subscriber_counts counts{};
  };
  struct alignas(64) registry_shard {
    mutable std::mutex m;
    std::unordered_map<std::string, registry_entry, string_hash, std::equal_to<>> channels;
  };
  struct local_list {
    std::vector<subscriber*> subs;
    std::size_t live = 0;    // non-null entries
    unsigned iterating = 0;  // > 0 while deliver_local walks this list
    bool has_holes = false;  // unsubscribed during a walk: compact afterwards
  };
  struct local_table {
    std::unordered_map<std::string, local_list, string_hash, std::equal_to<>> channels;
  };
  static constexpr std::size_t shard_count = 64;

  registry_shard& shard_for(std::string_view channel) const;
  std::uint64_t thread_mask(std::string_view channel) const;
  void deliver_local(unsigned t, const message_ptr& m);

  std::vector<poster> threads_;
  std::vector<std::unique_ptr<local_table>> locals_;
  std::unique_ptr<registry_shard[]> shards_;
  broker* broker_ = nullptr;
  std::function<void(const std::string&, const std::string&)> stop_handler_;
  std::function<void(const std::string&)> user_handler_;
};

}  // namespace herald::core
