#pragma once
// The broker port: where offsets are assigned, history is kept and publications are
// spread to every node. Implemented by broker/memory (the default) and broker/redis.
//
// Contract for implementations:
// - publish() assigns the channel's next offset (gap-free from 1 within an epoch),
//   stores the message in history, and hands it to the publication_listener of every
//   node with local subscribers, in offset order per channel.
// - A channel's epoch changes whenever its history is lost (restart of the memory
//   broker, reclaimed idle channel, wiped Redis); offsets then start again from 1.
// - Reads never create a channel: one with no life yet (never published, or reclaimed)
//   answers epoch 0 and top 0. Epoch 0 names no life; the position (epoch 0, offset 0)
//   means "before the first message of any life": a history read since it is recovered
//   while history still holds offset 1 of the current life, and a subscriber at it
//   consumes offset 1 of whatever epoch comes.
// - Callbacks may run inline, before the call returns, or later on a broker thread;
//   they must not block. Callers that need their own thread re-post (see
//   subscriber_session).
// - An accepted publish (a callback with a message) is never lost while the broker's
//   history still covers it.
// - Exact resume rests on one rule: a history read issued after watch(c) covers every
//   publication of c that the listener will not see. (Memory: the listener is called
//   under the channel's lock, and watch is immediate. Redis: a read of a watched channel
//   completes only once the SUBSCRIBE is confirmed, and the read runs in Redis after it.)
//   The session registers first, then reads; a publication then falls in the read or
//   reaches the listener, never between (tests/unit/broker/broker_contract.cpp races it).
// - Every `done` is called exactly once, also when the broker is down (a 503 error) or
//   stopping; a call never throws.
// - Threads: publish, signal, history, watch, unwatch, put_once, take_once, ready, channels and
//   stats may be called from any thread, concurrently. `done` and the listener run on
//   the caller's thread (memory, inline) or the broker's own thread (Redis): callers that
//   need their thread re-post (hub::run_on). set_listener is called once, before any
//   other call.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/message.hpp"
#include "util/api_error.hpp"

namespace herald::core {

using protocol::message_ptr;

/// Receives every publication of the channels this node watches (the hub).
class publication_listener {
 public:
  /// Called in offset order per channel, from any thread.
  virtual void on_publication(const message_ptr& m) = 0;
  /// Live delivery of `channel` may have missed publications (e.g. the broker's
  /// Pub/Sub connection was lost and restored): subscribers re-read from history.
  virtual void on_resync(const std::string& channel) = 0;
  /// Another node (or this one) asks to stop `channel`'s live ingest (stop_remote).
  virtual void on_stop_request(const std::string& channel, const std::string& reason) {
    (void)channel, (void)reason;
  }
  /// Another node asks this one to act on a user's connections (user_command_remote).
  virtual void on_user_command(const std::string& payload) { (void)payload; }

 protected:
  ~publication_listener() = default;
};

/// The reserved event name of a stream's last message (its data: {"state","reason"}).
inline constexpr std::string_view end_event = "end";

struct publish_request {
  std::string channel;
  std::string event;      // empty: none; end_event: the channel's last message
  std::string data_json;  // compact JSON
  /// Appends only if the message gets this offset, else 409 offset_mismatch with the
  /// channel's next offset (`"next_offset":N` in the error), checked atomically with the
  /// append: a retried append is never doubled.
  std::optional<std::uint64_t> expected_offset = {};
};

struct position {
  std::uint32_t epoch = 0;
  std::uint64_t offset = 0;  // last offset seen
};

struct history_query {
  std::string channel;
  std::optional<position> since;  // none: the newest `limit` messages
  std::size_t limit = 100;
  /// A bound on the messages' JSON bytes (0: none). Past it the reply stops (since: the
  /// oldest fit; latest: the newest), but it always holds one message when any is due,
  /// so a reader paging with the reply's cursor always progresses.
  std::size_t max_bytes = 0;
  /// From the oldest message history still holds (`since` ignored): always recovered,
  /// so a late reader gets whatever is left of the channel (`since=earliest`).
  bool earliest = false;
};

struct history_reply {
  std::vector<message_ptr> messages;  // oldest first
  std::uint32_t epoch = 0;            // the channel's current epoch (0: no life yet)
  std::uint64_t top = 0;              // the channel's newest offset (0: none yet)
  /// false when `since` could not be honoured: other epoch, or history no longer holds
  /// the messages right after it. `messages` is then empty and the caller goes on live
  /// from `top`.
  bool recovered = true;
  /// The channel's newest message is its end (event end_event): nothing follows it.
  bool ended = false;
};

struct channel_summary {
  std::string channel;
  std::uint32_t epoch = 0;
  std::uint64_t top = 0;
  std::size_t history_size = 0;
};

struct broker_stats {
  std::size_t channels = 0;
  std::size_t history_messages = 0;
  std::size_t history_bytes = 0;
};

class broker {
 public:
  using publish_result = std::variant<message_ptr, util::api_error>;
  using history_result = std::variant<history_reply, util::api_error>;

  virtual ~broker() = default;

  /// Sets the node's listener; called once, before any publish.
  virtual void set_listener(publication_listener* listener) = 0;

  /// Refused with 409: `stream_ended` once the channel's end is published (until the
  /// channel's history is gone and it starts a new life), `offset_mismatch` when
  /// `expected_offset` is not the next offset; both carry `"next_offset":N`.
  virtual void publish(publish_request req, std::function<void(publish_result)> done) = 0;

  /// Reads history; an offset in `since` past the channel's top within the same epoch
  /// is refused as a forged cursor (400 bad_cursor).
  virtual void history(history_query q, std::function<void(history_result)> done) = 0;

  /// Delivers a signal (`m->is_signal()`: an ephemeral message, a join or a leave) to
  /// the listener of every node watching its channel, this one included, and to nothing
  /// else: no offset, no history, no channel created. Order with the channel's
  /// publications is not kept. `done` gets nullopt once it is handed on (Redis: the
  /// PUBLISH was answered), or 503 when the broker is down.
  virtual void signal(message_ptr m, std::function<void(std::optional<util::api_error>)> done) = 0;

  /// The node gained its first / lost its last local subscriber of `channel`.
  virtual void watch(const std::string& channel) = 0;
  virtual void unwatch(const std::string& channel) = 0;

  /// One-time values (connection tickets): `value` is kept under `key` for `ttl`, and
  /// take_once() hands it out at most once, on any node sharing the broker. Keys are
  /// the caller's (random, unguessable); an error is 503 broker unavailable or full.
  using take_result = std::variant<std::optional<std::string>, util::api_error>;
  virtual void put_once(std::string key, std::string value, std::chrono::milliseconds ttl,
                        std::function<void(std::optional<util::api_error>)> done) = 0;
  /// The value, removing it; nullopt when unknown, expired or already taken.
  virtual void take_once(std::string key, std::function<void(take_result)> done) = 0;

  /// Leases (a stream's single producer across nodes): `holder` holds `key` for `ttl`
  /// unless another holder does. `done(true)`: `holder` holds it now (taken, or renewed
  /// by its holder, which pushes the expiry to now + ttl); `done(false)`: another holder
  /// has it; 503 when the broker is unreachable. A holder that dies loses it after `ttl`.
  using lease_result = std::variant<bool, util::api_error>;
  virtual void lease(std::string key, std::string holder, std::chrono::milliseconds ttl,
                     std::function<void(lease_result)> done) = 0;
  /// Gives the lease up if `holder` still holds it (nothing else; no reply).
  virtual void release_lease(std::string key, std::string holder) = 0;

  /// Streams: asks every node sharing the broker to stop `channel`'s live ingest
  /// (publication_listener::on_stop_request on each), then `done(true)` once the
  /// channel's end is published, `done(false)` when it is not within about a second (no
  /// node has a live ingest of it) or there are no other nodes (the memory broker).
  virtual void stop_remote(const std::string& channel, const std::string& reason, std::function<void(bool)> done) {
    (void)channel, (void)reason;
    done(false);
  }

  /// The users API: hands `payload` (protocol::user_command_json) to every other node
  /// sharing the broker (publication_listener::on_user_command there, not here); `done`
  /// gets true once it is sent, false when there is no other node (the memory broker)
  /// or the broker is not reachable.
  virtual void user_command_remote(const std::string& payload, std::function<void(bool)> done) {
    (void)payload;
    done(false);
  }

  /// True while publishes can be served (readiness).
  virtual bool ready() const = 0;

  /// Channels known to the broker (for GET /api/channels); `done` gets them, possibly on
  /// a broker thread (an answer never waits on a lock held across I/O). Totals for
  /// /metrics come from stats(), which must be cheap.
  virtual void channels(std::function<void(std::vector<channel_summary>)> done) const = 0;
  virtual broker_stats stats() const = 0;
};

}  // namespace herald::core
