#pragma once
// The per-connection subscription state machine shared by every transport.
//
// It owns the connection's channels and its position in each (epoch + last offset
// consumed), registers with the hub, replays history after a cursor, and merges replay
// with live delivery so that each message is consumed exactly once, in offset order:
//
//   1. register in the hub (live messages now reach deliver()),
//   2. read history after the cursor from the broker,
//   3. while 2 is outstanding, live messages wait in the channel's pending list;
//   4. once every channel has its history: on_reset() for channels history could not
//      cover, then replay + pending are consumed in offset order, skipping offsets
//      already consumed, then on_synced();
//   5. live: a message is consumed iff its offset is the next one. An older offset is a
//      duplicate (dropped); a newer one (a gap) or another epoch re-syncs the channel
//      through steps 2-4.
//
// Because registration (1) happens before the history read (2), a publication either
// is in the history read or reaches deliver() afterwards: none falls between.
//
// Runs on one event-loop thread (the connection's); broker callbacks from other
// threads are re-posted there. Transports derive from it and implement the hooks;
// a hook must not call unsubscribe() or unsubscribe_all() itself (post instead).
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/context.hpp"
#include "protocol/cursor.hpp"

namespace herald::core {

class subscriber_session : public subscriber, public std::enable_shared_from_this<subscriber_session> {
 public:
  subscriber_session(context& ctx, unsigned thread, transport kind);
  ~subscriber_session();
  subscriber_session(const subscriber_session&) = delete;
  subscriber_session& operator=(const subscriber_session&) = delete;

  /// Adds `channels` (valid, distinct names) and syncs them from `since` (entries
  /// matched by channel tag; a channel absent from it starts at "now", or with
  /// `earliest` at the oldest message history still holds), replaying at most
  /// `replay_limit` messages per channel. Call on the session's thread, once the
  /// session is owned by a shared_ptr.
  void subscribe(std::span<const std::string> channels, std::span<const protocol::cursor_entry> since,
                 std::size_t replay_limit, bool earliest = false);

  /// Leaves one channel (no-op when not subscribed).
  void unsubscribe(const std::string& channel);
  /// Leaves every channel; pending callbacks are ignored afterwards.
  void unsubscribe_all();
  bool subscribed(std::string_view channel) const noexcept;

  /// The cursor covering every channel at the last consumed offsets.
  std::string cursor() const;
  /// The same positions as entries, in subscription order.
  std::vector<protocol::cursor_entry> positions() const;
  /// The cursor of one channel alone (empty when not subscribed).
  std::string cursor_of(std::string_view channel) const;
  std::size_t channel_count() const noexcept { return channels_.size(); }
  /// The session's position in `channel` is at its end (a stream's last message, event
  /// end_event, consumed or already behind the cursor): nothing more will come.
  bool ended(std::string_view channel) const noexcept;
  /// Every channel is at its end (false without channels).
  bool all_ended() const noexcept;
  unsigned thread() const noexcept { return thread_; }
  transport kind() const noexcept final { return kind_; }

  /// Stops consuming: later messages are left for the next connection (long polling
  /// after it has its reply), or for resume_consuming().
  void pause() noexcept { paused_ = true; }
  bool paused() const noexcept { return paused_; }
  /// Consumes again after a pause (a refused message): every channel re-reads history
  /// from its position, so nothing refused or published meanwhile is lost. This is how
  /// a replay larger than the connection's queue is paced by the writes.
  void resume_consuming();

 protected:
  /// Channels whose gap history could not cover (other epoch, evicted, expired); they
  /// continue live from the channel's newest offset. Comes before any replayed message.
  virtual void on_reset(std::span<const std::string> channels) = 0;
  /// A message to send, in order. `single` is true when the session has one channel
  /// (the message's own cursor is then the session's cursor). Return false to refuse
  /// it (the position does not advance and consuming pauses). For a stream's end
  /// (event end_event) ended(channel) is already true.
  virtual bool on_message(const protocol::message_ptr& m, bool single) = 0;
  /// Every channel has its history applied (after the initial replay or a re-sync).
  virtual void on_synced() = 0;
  /// The broker failed to sync `channel` (e.g. a forged cursor, broker unavailable);
  /// the channel stays unsynced until the transport leaves it.
  virtual void on_error(const std::string& channel, const util::api_error& e) = 0;
  /// A signal (an ephemeral message, a join, a leave) of a synced channel, while not
  /// paused: live only, it moves no position. The transport queues it or drops it
  /// (counted), never cuts the connection for it.
  virtual void on_signal(const protocol::message_ptr& m) { (void)m; }
  /// The user presence lists this connection under (a token's sub; empty: anonymous).
  virtual std::string_view presence_user() const noexcept { return {}; }
  /// Whether subscribing enters presence (and so sends joins): false for a connection
  /// that only reads a position and is answered at once (longpoll_request).
  virtual bool counts_in_presence() const noexcept { return true; }

 public:
  /// What take_presence() hands over: the channels this connection is present in.
  struct presence_handover {
    std::string client, user;
    std::vector<std::string> channels;
  };
  /// Marks this connection absent from presence here, without telling the registry, and
  /// returns where it was present, for the caller to exit later (presence_registry::exit):
  /// a long poll stays present between polls. nullopt when it is present nowhere.
  std::optional<presence_handover> take_presence();

  /// Gives the connection its id before it subscribes (the id the backend hooks were
  /// told), so presence lists it under the same one. No effect once it has one.
  void set_client_id(std::string id);

  /// This connection's id in presence (empty until it subscribes where presence is kept).
  std::string_view client_id() const noexcept {
    return presence_ ? std::string_view(presence_->client) : std::string_view();
  }

 protected:
  context& ctx_;

 private:
  struct channel_state {
    std::string name;
    std::uint32_t tag = 0;
    std::uint32_t epoch = 0;
    std::uint64_t offset = 0;    // last offset consumed
    std::uint64_t top_seen = 0;  // newest offset known to exist (history top, dropped live)
    std::uint32_t hub_slot = 0;  // this session's place in the hub's list (hub::unsubscribe)
    std::uint16_t sync_id = 0;   // matches a history reply to the request that asked it
    // Flags, as bits: a channel_state is kept per subscription of every connection.
    bool synced : 1 = false;          // history applied, live
    bool asked_since : 1 = false;     // the last history read was since a position
    bool asked_earliest : 1 = false;  // ... or from the oldest message history holds
    bool ended : 1 = false;           // the position is at the channel's end
    bool present : 1 = false;         // entered in the presence registry
    std::vector<protocol::message_ptr> pending;
  };
  static constexpr std::size_t max_pending = 4096;

  void deliver(const protocol::message_ptr& m) final;
  void resync_hint(const std::string& channel) final;
  void hub_slot(const std::string& channel, std::uint32_t slot) final;
  void request_history(channel_state& c, std::optional<position> since, std::size_t limit, bool earliest = false);
  void apply_history(const std::string& channel, std::uint16_t sync_id, broker::history_result r);
  channel_state* find(std::string_view channel) noexcept;
  void finish_sync();
  /// Consumes `m` for channel `c` if it is the next offset; returns false on a gap.
  bool consume(channel_state& c, const protocol::message_ptr& m);
  void resync(channel_state& c);
  void enter_presence(channel_state& c);
  void exit_presence(channel_state& c);

  unsigned thread_;
  transport kind_;
  bool paused_ = false;
  std::size_t unsynced_ = 0;
  std::uint16_t next_sync_id_ = 0;  // wraps: a reply 65536 syncs old cannot be pending
  std::vector<std::string> resets_;
  std::vector<channel_state> channels_;
  // Allocated only where presence is kept; the user is kept from the first enter, so the
  // destructor (where presence_user() no longer reaches the transport) exits the same.
  struct presence_identity {
    std::string client, user;
  };
  std::unique_ptr<presence_identity> presence_;
};

}  // namespace herald::core
