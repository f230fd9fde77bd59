#pragma once
// The core façade: what a connection or an API call needs from the core, and the one way
// to publish and to read history.
//
// The HTTP API, the WebSocket commands, stream ingests and subscriber resumes call
// publish(), history() and replay() here rather than the broker port, so that every
// publication is counted once (herald_publishes_total / herald_publish_errors_total /
// herald_ephemeral_publishes_total), every client's history read is clamped by one limit
// and one byte bound, and every answer comes back on the calling event-loop thread (a
// broker may answer inline or from a thread of its own). Fan-out stays the hub's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/broker.hpp"
#include "core/hub.hpp"
#include "core/namespace_options.hpp"
#include "core/presence.hpp"
#include "core/stream_registry.hpp"
#include "core/user_registry.hpp"

namespace herald::core {

struct context {
  hub& hubs;
  broker& brokers;
  const namespace_table& namespaces;
  /// The byte bound of one history read made for a connection (history_query::max_bytes):
  /// what a connection may queue, so no replay or reply is built larger (0: none).
  std::size_t max_reply_bytes = 0;
  /// The live ingests of this node (POST /api/stream); null in tests that need none.
  stream_registry* streams = nullptr;
  /// Who is subscribed where presence or join_leave is on (null: not kept).
  presence_registry* presence = nullptr;
  /// The live connections of each user, for the users API (null: not kept).
  user_registry* users = nullptr;
  /// The most messages one history read a client asks for returns (/api/history,
  /// WebSocket history: --poll-limit-max, as a long poll's limit).
  std::size_t history_limit_max = 1000;

  using publish_done = std::function<void(broker::publish_result)>;
  using history_done = std::function<void(broker::history_result)>;

  /// Publishes `req` and counts the outcome; `ephemeral`: as a signal (live only, no
  /// offset; the result is the signal itself, `expected_offset` ignored). `done` runs on
  /// event-loop thread `t`, the caller's.
  void publish(unsigned t, publish_request req, bool ephemeral, publish_done done) const;
  /// A history read a client asked for: its limit clamped to history_limit_max, its bytes
  /// to max_reply_bytes; `done` runs on thread `t`.
  void history(unsigned t, history_query q, history_done done) const;
  /// A subscriber's resume: the caller's limit (--replay-limit), the byte bound; `done`
  /// runs on thread `t`.
  void replay(unsigned t, history_query q, history_done done) const;
  /// The limit of a client's history read that asked for `asked` messages.
  std::size_t history_limit(std::uint64_t asked) const noexcept {
    return static_cast<std::size_t>(std::min<std::uint64_t>(asked, history_limit_max));
  }
};

}  // namespace herald::core
