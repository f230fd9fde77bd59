#pragma once
// Presence: who is subscribed to the channels of namespaces with `presence` (or
// `join_leave`) on, with their user (a token's `sub`), connection id and transport.
//
// - Anonymous connections (no user) are counted, not listed.
// - A user with several connections in a channel counts once in `users`; join_leave
//   sends `join` on a user's first connection and `leave` when its last one goes, so
//   three tabs of one person are one arrival and one departure, not three.
// - Counts are kept as the registry changes: reading `users` and `connections` of a
//   channel of 100,000 subscribers is O(1) (a hash lookup), never a scan; a listing is
//   bounded by its `limit`.
// - Threads: every call may come from any thread. Channels live in 64 shards with one
//   mutex each, held for the map update and the hand-off of a join or leave to the
//   broker (which only posts or fans out; it never calls back here), so a user's join
//   and leave are handed on in the order they happened.
// - This is the node's view: with the Redis broker every node keeps its own
//   connections, and join and leave travel through Pub/Sub like any signal.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/broker.hpp"
#include "core/namespace_options.hpp"
#include "core/subscriber.hpp"
#include "util/string_hash.hpp"

namespace herald::core {

/// "sse", "poll" or "ws".
std::string_view transport_name(transport t) noexcept;

/// How many connections a presence listing names: `limit` defaults to 100 and is cut
/// to 1000; the counts always cover everyone.
inline constexpr std::size_t presence_limit_default = 100;
inline constexpr std::size_t presence_limit_max = 1000;

/// The body of a join or leave: {"user":..,"client":..,"transport":..}.
std::string who_json(const std::string& user, const std::string& client, transport t);

/// 403 presence_disabled: `channel`'s namespace does not keep presence.
util::api_error presence_disabled(std::string_view channel);

struct presence_client {
  std::string client;
  std::string user;
  transport kind = transport::ws;
};

struct presence_snapshot {
  std::vector<presence_client> clients;  // identified connections, at most the limit asked
  std::size_t users = 0;                 // distinct users (anonymous connections not included)
  std::size_t connections = 0;           // every connection, anonymous ones included
  std::size_t anonymous = 0;             // connections without a user
  bool truncated = false;                // more identified connections than `clients` lists
};

/// Where presence is shared by every node (the Redis broker, redis_presence.hpp). With a
/// mirror the registry still keeps this node's own connections (to put them back after a
/// Redis restart), but the shared state decides join and leave (a user's first and last
/// connection on any node) and answers snapshots. Calls come from any thread, in the
/// order of the registry's changes per channel; they must not block.
class presence_mirror {
 public:
  using snapshot_result = std::variant<presence_snapshot, util::api_error>;
  /// `first_here` / `last_here`: the channel gained its first / lost its last entry on
  /// this node. `announce`: the namespace has join_leave.
  virtual void entered(const std::string& channel, const std::string& client, const std::string& user, transport kind,
                       bool announce, bool first_here) = 0;
  virtual void exited(const std::string& channel, const std::string& client, const std::string& user, transport kind,
                      bool announce, bool last_here) = 0;
  /// The channel's presence over every node; `done` may run on another thread.
  virtual void snapshot(const std::string& channel, std::size_t limit, std::function<void(snapshot_result)> done) = 0;

 protected:
  ~presence_mirror() = default;
};

class presence_registry {
 public:
  /// `signals`: where join and leave go (null: nowhere, e.g. in unit tests).
  presence_registry(const namespace_table& namespaces, broker* signals);
  presence_registry(const presence_registry&) = delete;
  presence_registry& operator=(const presence_registry&) = delete;

  /// A connection id unique on this node and, with its random node prefix, across
  /// nodes: "<8 hex digits>.<counter>".
  std::string next_client_id();

  /// True when `channel`'s namespace keeps presence (presence or join_leave on).
  bool tracks(std::string_view channel) const;

  /// `client` (with `user`, empty when anonymous) subscribed to `channel`. Sends a join
  /// when it is the user's first connection there and the namespace has join_leave.
  void enter(const std::string& channel, const std::string& client, const std::string& user, transport kind);
  /// The reverse of enter(); a leave when it was the user's last connection there.
  /// Unknown clients are ignored.
  void exit(const std::string& channel, const std::string& client, const std::string& user);

  /// Shares presence through `m` (null: this node alone); call before any enter().
  void set_mirror(presence_mirror* m) noexcept { mirror_ = m; }
  /// This node's part of the id of its connections ("<8 hex digits>").
  std::string_view node_id() const noexcept { return std::string_view(node_prefix_).substr(0, 8); }

  /// This node's presence in `channel`; lists at most `limit` identified connections.
  presence_snapshot snapshot(std::string_view channel, std::size_t limit) const;
  /// The channel's presence: this node's (inline) or, with a mirror, every node's (the
  /// mirror's `done`, possibly on another thread).
  void shared_snapshot(const std::string& channel, std::size_t limit,
                       std::function<void(presence_mirror::snapshot_result)> done) const;
  /// Every channel with entries on this node: its anonymous count and identified
  /// connections, one channel at a time (the shard lock is not held while `fn` runs).
  void for_each_channel(const std::function<void(const std::string& channel, std::size_t anonymous,
                                                 const std::vector<presence_client>&)>& fn) const;
  /// {"clients":[…],"users":N,"connections":N,"anonymous":N[,"truncated":true]}
  static std::string to_json(const presence_snapshot& s);

  /// Channels with anyone present, and connections over every channel (metrics).
  std::size_t channels() const;
  std::size_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }

 private:
  struct entry {
    std::string user;
    transport kind;
  };
  struct channel_presence {
    std::unordered_map<std::string, entry, util::string_hash, std::equal_to<>> clients;  // identified only
    std::unordered_map<std::string, std::uint32_t, util::string_hash, std::equal_to<>> users;
    std::size_t anonymous = 0;
  };
  struct alignas(64) shard {
    mutable std::mutex m;
    std::unordered_map<std::string, channel_presence, util::string_hash, std::equal_to<>> channels;
  };
  static constexpr std::size_t shard_count = 64;

  shard& shard_for(std::string_view channel) const;
  void send(protocol::message_kind kind, const std::string& channel, const std::string& client, const std::string& user,
            transport t);

  const namespace_table& namespaces_;
  broker* signals_;
  presence_mirror* mirror_ = nullptr;
  std::unique_ptr<shard[]> shards_;
  std::string node_prefix_;
  std::atomic<std::uint64_t> next_id_{0};
  std::atomic<std::size_t> connections_{0};
};

}  // namespace herald::core
