#pragma once
// Per-namespace policy: history limits, what clients without a token may do, and how
// many subscribers a channel may have (a token adds its own grants: auth/authorizer).
// The namespace of a channel is the part of its name before the first ':'; channels of
// an unconfigured namespace (and channels without ':') follow the defaults.
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald::core {

struct namespace_options {
  std::size_t history_size = 100;         // messages kept per channel (0: none)
  std::chrono::seconds history_ttl{300};  // max age of kept messages (0: no age limit)
  std::size_t history_bytes = 0;          // bytes of kept messages per channel (0: no bound; the newest is always kept)
  bool client_publish = false;            // clients without a token may publish (POST /publish, WS)
  bool anonymous = true;                  // clients without a token may subscribe (and publish if above)
  std::size_t max_subscribers = 0;        // per channel and node (0: no limit)
  bool presence = false;                  // who is subscribed: GET /api/presence, WebSocket presence
  bool join_leave = false;                // join and leave events to the channel's subscribers
  bool personal = false;                  // NS:<sub> is its own token's (no grant needed), nobody else's
  // Streams (POST /api/stream, docs/streams.md)
  std::chrono::milliseconds stream_coalesce{25};  // text deltas within this window: one message (0: one per read)
  std::chrono::seconds stream_idle_timeout{30};   // a producer silent this long ends the stream with error
  std::size_t stream_max_bytes = 16 * 1024 * 1024;  // body bytes of one ingest
  std::chrono::seconds stream_max_duration{900};  // length of one ingest
};

class namespace_table {
 public:
  namespace_table() = default;
  explicit namespace_table(namespace_options defaults) : defaults_(defaults) {}

  void set(std::string name, namespace_options o) { by_name_[std::move(name)] = o; }
  const namespace_options& defaults() const noexcept { return defaults_; }

  /// Options for `channel` (looked up by its namespace).
  const namespace_options& for_channel(std::string_view channel) const;
  const std::unordered_map<std::string, namespace_options>& named() const noexcept { return by_name_; }

 private:
  namespace_options defaults_;
  std::unordered_map<std::string, namespace_options> by_name_;
};

}  // namespace herald::core
