#pragma once
// GET /ws after the upgrade: one WebSocket connection speaking the JSON command
// protocol (docs/protocol.md).
//
// Frames are parsed by protocol::ws_reader and written by hand rather than through
// Beast's websocket::stream: pushes are framed once per message and shared by every
// subscriber (compressed once too, with permessage-deflate), and what queues while a
// write is in flight leaves in one gather write; Beast writes one frame per call from
// its own buffers (docs/adr/0004-own-websocket-framing.md).
//
// Liveness: a connection silent for ws_ping_interval gets a ping; silent for
// ws_pong_timeout more, it is closed (4001). Output, replay pacing and the slow-reader
// cap come from stream_session; a slow live reader is closed with 4000. No read buffer
// is held while idle.
//
// Backpressure: every byte queued for the client (pushes, replies, pongs, close frames)
// goes through stream_session's one queue. While it holds max_queued_bytes or more, or
// max_commands_in_flight commands wait for the broker, the session stops parsing and
// reading (the client's TCP window closes); it reads again once the queue is down to
// half. So a client that sends but never reads holds at most about
// (1 + max_commands_in_flight) * max_queued_bytes: each reply is built within the cap.
//
// Limits: commands are rate limited per connection (a token bucket of
// ws_commands_per_second, one second's worth of burst); a command over the rate gets a
// 429 error reply, and a client that keeps sending at twice the rate is closed (1008).
// A token that expires closes the connection with 4003 (refresh, then reconnect).
//
// Raw subscriptions ("format":"raw"): each message is a binary frame holding its data
// alone, shared by every connection (ws_raw_channels.hpp); the client counts offsets
// from the subscribe result's cursor (docs/protocol.md "Raw formats").
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "metrics/metrics.hpp"
#include "protocol/cursor.hpp"
#include "protocol/hook_json.hpp"
#include "protocol/ws_frame.hpp"
#include "protocol/ws_protocol.hpp"
#include "transport/stream_session.hpp"
#include "transport/ws_raw_channels.hpp"

namespace herald::transport {

/// The subscribe commands of a WebSocket waiting for their answer: (channel, command
/// id). Allocated only while one waits, so an idle connection keeps a null pointer.
class pending_list {
 public:
  using value_type = std::pair<std::string, std::string>;
  using iterator = value_type*;
  iterator begin() noexcept { return v_ ? v_->data() : nullptr; }
  iterator end() noexcept { return v_ ? v_->data() + v_->size() : nullptr; }
  bool empty() const noexcept { return !v_; }
  value_type& front() noexcept { return v_->front(); }
  void emplace_back(std::string channel, std::string id) {
    if (!v_) v_ = std::make_unique<std::vector<value_type>>();
    v_->emplace_back(std::move(channel), std::move(id));
  }
  void clear() noexcept { v_.reset(); }
  void erase(iterator it) {
    v_->erase(v_->begin() + (it - v_->data()));
    if (v_->empty()) v_.reset();
  }

 private:
  std::unique_ptr<std::vector<value_type>> v_;
};

class ws_session final : public stream_session, private protocol::ws_reader::handler {
 public:
  /// `tls`: the TLS stream of a wss connection (null: plain, on `socket`).
  ws_session(tcp_socket socket, std::unique_ptr<tls_stream> tls, thread_context& tc, shared_state& st, bool deflate);

  /// Writes the 101 response, then handles `early` (bytes the client sent right after
  /// its handshake) and reads on.
  void start(const std::string& response_head, std::string early);
  /// Completes the upgrade only to close at once with `code` (refused credentials:
  /// browsers cannot read an HTTP refusal of an upgrade, only a close code).
  void start_refused(const std::string& response_head, std::uint16_t code, std::string_view reason);

 private:
  enum class state : std::uint8_t { open, closing, closed };

  // core::subscriber_session
  void on_reset(std::span<const std::string> channels) override;
  bool on_message(const protocol::message_ptr& m, bool single) override;
  void on_synced() override;
  void on_error(const std::string& channel, const util::api_error& e) override;
  void on_signal(const protocol::message_ptr& m) override;
  // core::user_connection (ws_commands.cpp)
  bool apply_user_command(const protocol::user_command& c) override;
  // protocol::ws_reader::handler
  void on_ws_message(bool text, std::string_view payload) override;
  void on_ws_ping(std::string_view payload) override;
  void on_ws_pong(std::string_view payload) override;
  void on_ws_close(std::uint16_t code, std::string_view reason) override;
  bool hold() const noexcept override;
  // tickable, flushable
  void on_tick(std::int64_t now_ms) override;
  void drain() override;
  bool can_write() const noexcept override { return state_ != state::closed; }
  bool consuming() const noexcept override { return state_ == state::open; }
  void end() override { terminate(); }
  void on_output_drained() override;

  std::shared_ptr<ws_session> self();
  void handle(protocol::ws_command cmd);
  bool take_command_token();
  void subscribe_command(protocol::ws_command& cmd);
  void history_command(protocol::ws_command& cmd);
  void publish_command(protocol::ws_command& cmd);
  void publish_now(protocol::ws_command& cmd);
  void subscribe_now(const protocol::ws_command& cmd, std::vector<protocol::cursor_entry> since, bool earliest);
  protocol::hook_call hook_call_of(protocol::hook_kind k, const protocol::ws_command& cmd);
  void presence_command(protocol::ws_command& cmd);
  void stop_command(protocol::ws_command& cmd);
  void reply(std::string_view id, std::string_view result_json);
  void reply_error(std::string_view id, const util::api_error& e);
  void reply_subscribed(const std::string& channel, bool recovered, const std::string& cursor, bool ended = false);
  /// Leaves `channel` (posted: not from inside a hook) once its stream ended.
  void leave_ended(const std::string& channel);
  void drop_pending(pending_list::iterator it);
  void send_text(std::string_view json);
  void close_with(std::uint16_t code, std::string_view reason, bool wait_for_peer);
  void feed(char* data, std::size_t n);
  void do_read();
  void do_read_tls();
  void on_read_tls(const boost::system::error_code& ec, std::size_t n);
  /// Reads again once a hold is over (output drained, broker replies back).
  void release_hold();
  /// The queue holds `queued_limit` bytes or more, or too many commands wait for the broker.
  bool backlogged(std::size_t queued_limit) const noexcept;
  void command_done();
  void terminate();

  protocol::ws_reader reader_;
  // Kept small: every idle connection carries them (seconds of the loop's steady clock).
  const bool deflate_;
  state state_ = state::open;
  std::int32_t last_read_s_;
  std::int32_t ping_sent_s_ = 0;
  std::int32_t close_sent_s_ = 0;
  float command_tokens_;                 // rate limit bucket
  std::uint32_t command_strikes_ = 0;    // refused commands since the last accepted one
  std::int64_t command_refill_ms_;       // when the bucket was last refilled
  std::uint8_t commands_in_flight_ = 0;  // waiting for the broker (publish, history)
  bool read_held_ = false;               // reading stopped by hold()
  ws_raw_channels raw_;
  // TLS: the connection's own read buffer (the TLS stream may decrypt into it before the
  // handler runs, so the thread's scratch buffer cannot be shared); plain: none.
  std::unique_ptr<char[]> tls_read_;
  // Subscribe commands waiting for their channel's sync: (channel, request id).
  pending_list pending_subscribes_;
  metrics::gauge_guard gauge_{metrics::gauge::connections_ws};
};

}  // namespace herald::transport
