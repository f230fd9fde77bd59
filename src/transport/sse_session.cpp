#include "transport/sse_session.hpp"

#include <boost/asio/post.hpp>

#include "api/api_handlers.hpp"
#include "protocol/replies.hpp"
#include "protocol/user_command.hpp"
#include "transport/client_events.hpp"
#include "transport/http_response.hpp"

namespace herald::transport {

sse_session::sse_session(tcp_socket socket, std::unique_ptr<tls_stream> tls, thread_context& tc, shared_state& st)
    : stream_session(std::move(socket), std::move(tls), tc, st, core::transport::sse) {}

std::shared_ptr<sse_session> sse_session::self() { return std::static_pointer_cast<sse_session>(shared_from_this()); }

void sse_session::start(subscribe_request req, header_list headers) {
  extra_headers_ = std::move(headers);
  raw_ = req.raw;
  subscribe(req.channels, req.since, st_.opts.replay_limit, req.earliest);
  if (closing_) return;
  list_user();
  tc_.add_tickable(this);
  wait_readable();
}

void sse_session::send_head() {
  if (head_sent_) return;
  head_sent_ = true;
  static const header_list headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  if (extra_headers_.empty()) {
    queue_head(200, "text/event-stream", -1, true, headers);
  } else {
    header_list h = headers;
    h.insert(h.end(), extra_headers_.begin(), extra_headers_.end());
    queue_head(200, "text/event-stream", -1, true, h);
    header_list().swap(extra_headers_);
  }
  out_.push_copy(protocol::sse_retry(st_.opts.sse_retry.count()));
}

std::string sse_session::position() const { return raw_ ? protocol::encode_raw_cursor(positions()) : cursor(); }

void sse_session::on_reset(std::span<const std::string> channels) {
  send_head();
  out_.push_copy(protocol::sse_reset(position(), channels));
  schedule_flush();
}

bool sse_session::on_message(const protocol::message_ptr& m, bool single) {
  if (closing_) {
    metrics::add(metrics::counter::drops);
    return true;
  }
  if (pace_replay()) return false;
  send_head();
  if (raw_ && single) {
    out_.push_shared(m->sse_raw_event(), m);
  } else if (raw_) {
    out_.push_copy(protocol::sse_raw_id_line(cursor()));
    out_.push_shared(m->sse_raw_body(), m);
  } else if (single) {
    out_.push_shared(m->sse_event(), m);
  } else {
    // The id of a multi-channel stream covers every channel: this line is ours alone.
    out_.push_copy(protocol::sse_id_line(cursor()));
    out_.push_shared(m->sse_body(), m);
  }
  metrics::add(metrics::counter::deliveries_sse);
  if (m->event() == core::end_event && all_ended()) {
    // The stream's end: the response ends after it. A reconnecting EventSource resumes
    // at the end and gets 204, which stops it for good.
    pause();
    close_after_write_ = true;
  }
  if (over_cap()) {
    slow_reader_cut("sse", {{"queued_bytes", out_.queued_bytes()}});
    closing_ = true;
    out_.clear();
    net::post(tc_.ioc(), [s = self()] { s->close(); });
    return true;
  }
  schedule_flush();
  return true;
}

void sse_session::on_signal(const protocol::message_ptr& m) {
  // No id line, whatever the channels: the stream's position does not move.
  if (closing_ || close_after_write_ || !signal_fits()) return;
  send_head();
  out_.push_shared(m->sse_event(), m);
  metrics::add(metrics::counter::signals_delivered);
  schedule_flush();
}

bool sse_session::apply_user_command(const protocol::user_command& c) {
  // The channels of a stream are its URL's: a subscribe or unsubscribe from the backend
  // tells the client to reopen the stream with the new set (docs/presence.md).
  using op = protocol::user_command::op;
  if (closing_ || close_after_write_ || error_sent_) return false;
  if (c.what == op::subscribe && subscribed(c.channel)) return false;
  if (c.what == op::unsubscribe && !subscribed(c.channel)) return false;
  send_head();
  out_.push_copy(c.what == op::disconnect ? protocol::sse_disconnect_event(c) : protocol::sse_resubscribe_event(c));
  pause();
  close_after_write_ = true;
  schedule_flush();
  return true;
}

void sse_session::on_synced() {
  if (all_ended()) {
    if (!head_sent_) {
      // A resume at or after the end: 204 No Content, so EventSource stops reconnecting.
      head_sent_ = error_sent_ = true;
      queue_head(204, "", -1, false, extra_headers_);
    }
    pause();
    close_after_write_ = true;
    schedule_flush();
    return;
  }
  send_head();
  // Tell EventSource the position even when nothing was replayed: an `id:` field with
  // no data sets lastEventId without firing an event.
  out_.push_copy(protocol::sse_position(position()));
  go_live();
  schedule_flush();
}

void sse_session::on_error(const std::string&, const util::api_error& e) {
  // Several channels may fail at once: the first error is the reply, written whole.
  if (error_sent_) return;
  if (head_sent_) {
    // Mid-stream (a failed re-sync): end the stream; EventSource reconnects and resumes.
    closing_ = true;
    net::post(tc_.ioc(), [s = self()] { s->close(); });
    return;
  }
  head_sent_ = true;
  error_sent_ = true;
  auto r = api::error_response(e);
  metrics::add(e.status >= 500 ? metrics::counter::http_server_errors : metrics::counter::http_client_errors);
  queue_head(r.status, r.content_type, static_cast<long long>(r.body.size()), false, extra_headers_);
  out_.push_copy(r.body);
  close_after_write_ = true;
  schedule_flush();
}

void sse_session::on_tick(std::int64_t now_ms) {
  const std::int64_t now_s = now_ms / 1000;
  if (closing_ || !head_sent_ || close_after_write_) return;
  if (token_expired()) {
    // The stream ends; the client fetches a fresh token (or ticket) and resumes from
    // the id of this event.
    metrics::add(metrics::counter::token_expiries);
    out_.push_copy(protocol::sse_token_expired(position()));
    pause();
    close_after_write_ = true;
    return flush();
  }
  if (now_s - last_write_s_ < st_.opts.sse_heartbeat.count()) return;
  last_write_s_ = static_cast<std::int32_t>(now_s);
  out_.push_copy(":\n\n");
  flush();
}

void sse_session::drain() {
  // The stream ends after what is queued; EventSource reconnects (through the load
  // balancer, to another node) and resumes with Last-Event-ID.
  if (closing_) return;
  close_after_write_ = true;
  if (!out_.writing() && out_.empty()) {
    closing_ = true;
    net::post(tc_.ioc(), [s = self()] { s->close(); });
  }
}

void sse_session::wait_readable() {
  // Clients send nothing on an event stream: readable means closed (or junk, dropped).
  // Over HTTP/2 the connection reads, and tells this session when its stream ends.
  if (sink_) return;
  if (tls_) {
    // Through TLS (a close_notify, or the end): what is read is dropped, so the thread's
    // scratch buffer will do even though the stream may fill it before the handler runs.
    tls_->async_read_some(net::buffer(tc_.scratch()), [s = self()](const boost::system::error_code& ec, std::size_t) {
      if (ec || s->closing_) return s->close();
      s->wait_readable();
    });
    return;
  }
  socket_.async_wait(tcp_socket::wait_read, tc_.idle_wait([s = self()](const boost::system::error_code& ec) {
    if (ec || s->closing_) return s->close();
    boost::system::error_code rec;
    std::size_t n = s->socket_.read_some(net::buffer(s->tc_.scratch()), rec);
    if (rec || n == 0) return s->close();
    s->wait_readable();
  }));
}

void sse_session::close() {
  if (!connected()) return;
  closing_ = true;
  shut_down();
}

}  // namespace herald::transport
