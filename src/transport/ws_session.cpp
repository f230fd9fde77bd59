#include "transport/ws_session.hpp"

#include <boost/asio/post.hpp>

#include "protocol/cursor.hpp"
#include "protocol/deflate.hpp"
#include "protocol/replies.hpp"
#include "transport/client_events.hpp"

namespace herald::transport {

namespace ws_close = protocol::ws_close;
using protocol::ws_opcode;

namespace {
constexpr std::uint8_t max_commands_in_flight = 8;
constexpr std::size_t tls_read_bytes = 16 * 1024;  // one TLS record
}

ws_session::ws_session(tcp_socket socket, std::unique_ptr<tls_stream> tls, thread_context& tc, shared_state& st,
                       bool deflate)
    : stream_session(std::move(socket), std::move(tls), tc, st, core::transport::ws),
      reader_(st.opts.ws_max_message, deflate),
      deflate_(deflate),
      last_read_s_(static_cast<std::int32_t>(tc.now_s())),
      command_tokens_(static_cast<float>(st.opts.ws_commands_per_second)),
      command_refill_ms_(tc.now_ms()) {}

std::shared_ptr<ws_session> ws_session::self() { return std::static_pointer_cast<ws_session>(shared_from_this()); }

void ws_session::start(const std::string& response_head, std::string early) {
  out_.push_copy(response_head);
  tc_.add_tickable(this);
  boost::system::error_code ec;
  if (!tls_) socket_.non_blocking(true, ec);
  flush();
  list_user();
  if (!early.empty()) feed(early.data(), early.size());
  if (state_ != state::closed) do_read();
}

void ws_session::start_refused(const std::string& response_head, std::uint16_t code, std::string_view reason) {
  metrics::add(metrics::counter::bad_connections);
  out_.push_copy(response_head);
  state_ = state::closing;
  close_sent_s_ = static_cast<std::int32_t>(tc_.now_s());
  close_after_write_ = true;
  out_.push_copy(protocol::ws_close_frame(code, reason.substr(0, 120)));
  tc_.add_tickable(this);
  flush();
}

// ---------------------------------------------------------------------------
// Reading

void ws_session::do_read() {
  if (tls_) return do_read_tls();
  // Bound to the loop's executor (a pointer: the operation keeps no second copy of the
  // socket's polymorphic one); allocated by Asio's recycling cache, which here hands
  // the wait a block of its own size (the reads reuse it): measured smaller than
  // thread_context::idle_wait's exact block, which the SSE and long-poll waits use.
  socket_.async_wait(tcp_socket::wait_read,
                     net::bind_executor(tc_.ioc().get_executor(), [s = self()](const boost::system::error_code& ec) {
                       if (s->state_ == state::closed) return;
                       if (ec) return s->terminate();
                       // Drain what is there (bounded, to stay fair to the other connections of the loop).
                       for (int i = 0; i < 16 && !s->hold(); ++i) {
                         boost::system::error_code rec;
                         std::size_t n = s->socket_.read_some(net::buffer(s->tc_.scratch()), rec);
                         if (rec == net::error::would_block) break;
                         if (rec || n == 0) return s->terminate();
                         metrics::add(metrics::counter::bytes_in, n);
                         s->feed(s->tc_.scratch().data(), n);
                         if (s->state_ == state::closed || n < s->tc_.scratch().size()) break;
                       }
                       if (s->state_ == state::closed) return;
                       if (s->hold())
                         s->read_held_ = true;
                       else
                         s->do_read();
                     }));
}

void ws_session::do_read_tls() {
  if (!tls_read_) tls_read_ = std::make_unique<char[]>(tls_read_bytes);
  tls_->async_read_some(net::buffer(tls_read_.get(), tls_read_bytes),
                        [s = self()](const boost::system::error_code& ec, std::size_t n) { s->on_read_tls(ec, n); });
}

void ws_session::on_read_tls(const boost::system::error_code& ec, std::size_t n) {
  if (state_ == state::closed) return;
  if (ec) return terminate();
  metrics::add(metrics::counter::bytes_in, n);
  feed(tls_read_.get(), n);
  if (state_ == state::closed) return;
  if (hold())
    read_held_ = true;
  else
    do_read_tls();
}

bool ws_session::backlogged(std::size_t queued_limit) const noexcept {
  return out_.queued_bytes() >= queued_limit || commands_in_flight_ >= max_commands_in_flight;
}

bool ws_session::hold() const noexcept { return backlogged(st_.opts.max_queued_bytes); }

void ws_session::on_output_drained() { release_hold(); }

void ws_session::release_hold() {
  if (!read_held_ || state_ == state::closed) return;
  if (backlogged(st_.opts.max_queued_bytes / 2)) return;  // hysteresis: read again at half
  read_held_ = false;
  feed(nullptr, 0);  // what a hold left unparsed
  if (state_ == state::closed) return;
  if (hold())
    read_held_ = true;
  else
    do_read();
}

void ws_session::command_done() {
  --commands_in_flight_;
  release_hold();
}

void ws_session::feed(char* data, std::size_t n) {
  if (n) {
    last_read_s_ = static_cast<std::int32_t>(tc_.now_s());
    ping_sent_s_ = 0;
  }
  if (!reader_.feed(data, n, *this)) {
    metrics::add(metrics::counter::bad_connections);
    if (reader_.error_code() == ws_close::too_big)
      limit_refused(metrics::counter::limit_message_size, "message_size", {{"what", "websocket message"}});
    close_with(reader_.error_code(), reader_.error_reason(), false);
  }
}

bool ws_session::take_command_token() {
  const auto rate = st_.opts.ws_commands_per_second;
  if (rate == 0) return true;
  const auto now = tc_.now_ms();
  command_tokens_ =
      std::min<float>(static_cast<float>(rate), command_tokens_ + static_cast<float>(now - command_refill_ms_) *
                                                                      static_cast<float>(rate) / 1000.0f);
  command_refill_ms_ = now;
  if (command_tokens_ >= 1) {
    command_tokens_ -= 1;
    command_strikes_ = 0;
    return true;
  }
  limit_refused(metrics::counter::limit_commands_per_second, "commands_per_second");
  if (++command_strikes_ > 2 * rate) close_with(ws_close::policy, "command flood: over the rate limit", false);
  return false;
}

void ws_session::on_ws_message(bool, std::string_view payload) {
  if (state_ != state::open) return;
  const bool allowed = take_command_token();
  if (state_ != state::open) return;  // closed for flooding
  auto parsed = protocol::parse_ws_command(payload, st_.api_opts.max_data_bytes);
  if (auto* err = std::get_if<protocol::ws_command_error>(&parsed)) {
    if (err->error.status == 413)
      limit_refused(metrics::counter::limit_message_size, "message_size", {{"what", "message data"}});
    return reply_error(err->id, err->error);
  }
  if (!allowed)
    return reply_error(
        std::get<protocol::ws_command>(parsed).id,
        {429, "rate_limited", "over " + std::to_string(st_.opts.ws_commands_per_second) + " commands per second"});
  handle(std::move(std::get<protocol::ws_command>(parsed)));
}

void ws_session::on_ws_ping(std::string_view payload) {
  if (state_ != state::open) return;
  out_.push_copy(protocol::ws_frame(ws_opcode::pong, payload));
  schedule_flush();
}

void ws_session::on_ws_pong(std::string_view) {}

void ws_session::on_ws_close(std::uint16_t code, std::string_view) {
  if (state_ == state::open) {
    // Echo the peer's code (RFC 6455 5.5.1), then close the TCP connection.
    close_with(code == ws_close::no_status ? ws_close::normal : code, "", false);
  } else {
    close_after_write_ = true;
    if (!out_.writing()) terminate();
  }
}

// ---------------------------------------------------------------------------
// Subscription hooks

void ws_session::drop_pending(pending_list::iterator it) {
  pending_subscribes_.erase(it);  // the last one frees the list: idle connections keep none
}

void ws_session::reply_subscribed(const std::string& channel, bool recovered, const std::string& cursor,
                                  bool ended) {
  auto it =
      std::find_if(pending_subscribes_.begin(), pending_subscribes_.end(), [&](auto& p) { return p.first == channel; });
  if (it == pending_subscribes_.end()) return;
  std::string id = std::move(it->second);
  drop_pending(it);
  reply(id, protocol::ws_subscribed(channel, recovered, cursor, raw_.raw(channel), ended));
  if (ended) leave_ended(channel);
}

void ws_session::leave_ended(const std::string& channel) {
  net::post(tc_.ioc(), [s = self(), channel] {
    if (s->ended(channel)) s->unsubscribe(channel);
  });
}

void ws_session::on_reset(std::span<const std::string> channels) {
  for (const auto& ch : channels) {
    bool pending =
        std::any_of(pending_subscribes_.begin(), pending_subscribes_.end(), [&](auto& p) { return p.first == ch; });
    if (pending)
      reply_subscribed(ch, false, cursor_of(ch));
    else
      send_text(protocol::ws_reset(ch, cursor_of(ch)));
  }
}

void ws_session::on_signal(const protocol::message_ptr& m) {
  if (state_ != state::open || !signal_fits()) return;
  out_.push_shared(m->ws_frame(deflate_), m);
  metrics::add(metrics::counter::signals_delivered);
  schedule_flush();
}

bool ws_session::on_message(const protocol::message_ptr& m, bool) {
  if (state_ != state::open) {
    metrics::add(metrics::counter::drops);
    return true;
  }
  if (pace_replay()) return false;
  if (!pending_subscribes_.empty()) {
    // The first replayed message of a channel comes after any reset of it: recovered.
    protocol::cursor_entry before{m->channel_tag(), m->epoch(), m->offset() - 1};
    reply_subscribed(m->channel(), true, protocol::encode_cursor({&before, 1}));
  }
  // Raw: a message with an event name keeps the push form (its name, offset and cursor),
  // a stream's end included: a text frame, a signal the client tells from data by the
  // opcode (docs/protocol.md, "Raw formats").
  if (!raw_.empty() && m->event().empty() && raw_.raw(m->channel())) {
    if (auto named = raw_.announce(*m); !named.empty()) send_text(named);
    out_.push_shared(m->ws_raw_frame(deflate_), m);
  } else {
    out_.push_shared(m->ws_frame(deflate_), m);
  }
  metrics::add(metrics::counter::deliveries_ws);
  if (m->event() == core::end_event) leave_ended(m->channel());  // the subscription ends with the stream
  if (over_cap()) {
    slow_reader_cut("ws", {{"queued_bytes", out_.queued_bytes()}});
    out_.clear();
    close_with(ws_close::slow_consumer, "slow consumer: outbound queue over its cap", false);
    return true;
  }
  schedule_flush();
  return true;
}

void ws_session::on_synced() {
  go_live();
  while (!pending_subscribes_.empty()) {
    auto ch = pending_subscribes_.front().first;
    if (!subscribed(ch)) {
      drop_pending(pending_subscribes_.begin());
      continue;
    }
    reply_subscribed(ch, true, cursor_of(ch), ended(ch));
  }
}

void ws_session::on_error(const std::string& channel, const util::api_error& e) {
  auto it =
      std::find_if(pending_subscribes_.begin(), pending_subscribes_.end(), [&](auto& p) { return p.first == channel; });
  if (it == pending_subscribes_.end()) {
    // A re-sync failed mid-stream (broker unreachable): the client reconnects and
    // resumes from its cursors.
    close_with(ws_close::broker_unavailable, "broker unavailable, reconnect and resume", false);
    return;
  }
  reply_error(it->second, e);
  drop_pending(it);
  raw_.set(channel, false);
  // Leave the channel outside the hook (the session may be mid-sync).
  net::post(tc_.ioc(), [s = self(), channel] { s->unsubscribe(channel); });
}

// ---------------------------------------------------------------------------
// Writing

void ws_session::reply(std::string_view id, std::string_view result_json) {
  send_text(protocol::ws_reply(id, result_json));
}

void ws_session::reply_error(std::string_view id, const util::api_error& e) {
  send_text(protocol::ws_error_reply(id, e));
}

void ws_session::send_text(std::string_view json) {
  if (state_ != state::open) return;
  if (deflate_)
    out_.push_copy(protocol::ws_frame(ws_opcode::text, protocol::deflate_message(json), true));
  else
    out_.push_copy(protocol::ws_frame(ws_opcode::text, json));
  schedule_flush();
}

void ws_session::close_with(std::uint16_t code, std::string_view reason, bool wait_for_peer) {
  if (state_ != state::open) return;
  state_ = state::closing;
  close_sent_s_ = static_cast<std::int32_t>(tc_.now_s());
  close_after_write_ = !wait_for_peer;
  out_.push_copy(protocol::ws_close_frame(code, reason));
  schedule_flush();
}

void ws_session::on_tick(std::int64_t now_ms) {
  const std::int64_t now_s = now_ms / 1000;
  if (state_ == state::closing) {
    if (now_s - close_sent_s_ >= 5) terminate();  // the peer never completed the close
    return;
  }
  if (state_ != state::open) return;
  if (token_expired()) {
    metrics::add(metrics::counter::token_expiries);
    return close_with(ws_close::token_expired, "token expired: refresh it and reconnect", false);
  }
  if (ping_sent_s_) {
    if (now_s - ping_sent_s_ >= st_.opts.ws_pong_timeout.count())
      close_with(ws_close::no_pong, "no answer to ping", false);
    return;
  }
  if (now_s - last_read_s_ >= st_.opts.ws_ping_interval.count()) {
    ping_sent_s_ = static_cast<std::int32_t>(now_s);
    out_.push_copy(protocol::ws_frame(ws_opcode::ping, ""));
    flush();
  }
}

void ws_session::drain() { close_with(ws_close::going_away, "server shutting down, reconnect", true); }

void ws_session::terminate() {
  if (state_ == state::closed) return;
  state_ = state::closed;
  pending_subscribes_.clear();
  shut_down();
}

}  // namespace herald::transport
