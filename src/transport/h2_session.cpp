#include "transport/h2_session.hpp"

#include <nghttp2/nghttp2.h>

#include <boost/asio/write.hpp>

#include "transport/client_events.hpp"
#include "transport/h2_stream.hpp"
#include "util/clock.hpp"

namespace herald::transport {

namespace {

constexpr std::uint32_t max_streams = 100;
constexpr std::int64_t flood_window_ms = 10'000;
constexpr std::uint32_t max_resets_per_window = 200;
constexpr std::uint32_t max_opened_per_window = 2000;
constexpr std::size_t read_bytes = 16 * 1024;
constexpr std::size_t write_batch_bytes = 64 * 1024;

h2_session& of(void* user) { return *static_cast<h2_session*>(user); }

std::string_view view(const std::uint8_t* p, std::size_t n) { return {reinterpret_cast<const char*>(p), n}; }

int begin_headers_cb(nghttp2_session*, const nghttp2_frame* f, void* user) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  return of(user).on_begin_headers(f->hd.stream_id);
}

int header_cb(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name, std::size_t namelen,
              const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  return of(user).on_header(f->hd.stream_id, view(name, namelen), view(value, valuelen));
}

int frame_recv_cb(nghttp2_session*, const nghttp2_frame* f, void* user) {
  return of(user).on_frame_recv(f->hd.stream_id, f->hd.type, f->hd.flags);
}

int data_cb(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len, void* user) {
  return of(user).on_data(id, view(data, len));
}

int frame_send_cb(nghttp2_session*, const nghttp2_frame* f, void* user) {
  return of(user).on_frame_sent(f->hd.stream_id, f->hd.type, f->hd.flags);
}

int stream_close_cb(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user) {
  return of(user).on_stream_close(id, error_code);
}

}  // namespace

h2_session::h2_session(std::unique_ptr<tls_stream> tls, tcp_stream plain, thread_context& tc, shared_state& st,
                       ip_slot slot)
    : plain_(std::move(plain)), tls_(std::move(tls)), tc_(tc), st_(st), ip_slot_(std::move(slot)) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers_cb);
  nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_cb);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, frame_send_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Bounds on what a peer can make nghttp2 queue or hold: SETTINGS entries per frame,
  // and the HPACK table it asks us to keep for our responses.
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
}

h2_session::~h2_session() {
  tc_.remove_tickable(this);
  if (session_) nghttp2_session_del(session_);
}

void h2_session::start(std::string_view already_read) {
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(st_.opts.max_header_bytes)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  idle_since_ms_ = window_start_ms_ = util::steady_ms();
  tc_.add_tickable(this);
  read_buf_ = std::make_unique<char[]>(read_bytes);
  if (!already_read.empty() && !feed(already_read.data(), already_read.size())) return;
  flush();
  do_read();
}

std::optional<boost::asio::ip::address> h2_session::peer_address() {
  boost::system::error_code ec;
  auto& s = tls_ ? tls_->next_layer().socket() : plain_.socket();
  const auto peer = s.remote_endpoint(ec);
  if (ec) return std::nullopt;
  return peer.address();
}

void h2_session::do_read() {
  auto done = [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) { self->on_read(ec, n); };
  auto buf = net::buffer(read_buf_.get(), read_bytes);
  if (tls_)
    tls_->async_read_some(buf, std::move(done));
  else
    plain_.socket().async_read_some(buf, std::move(done));
}

void h2_session::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (closed_) return;
  metrics::add(metrics::counter::bytes_in, n);
  if (ec) return close();
  // Ending with an error: what the peer still sends is not read into nghttp2.
  if (terminating_) return do_read();
  if (!feed(read_buf_.get(), n)) return;
  flush();
  if (!closed_) do_read();
}

bool h2_session::feed(const char* data, std::size_t n) {
  const auto r = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), n);
  if (closed_) return false;
  if (r < 0) {
    // Not HTTP/2 at all (no preface), or a state nghttp2 cannot go on from. (Protocol
    // errors it can answer, it answers with GOAWAY itself: counted in on_frame_sent.)
    metrics::add(metrics::counter::bad_connections);
    close();
    return false;
  }
  return true;
}

void h2_session::want_write() {
  if (!flush_pending_ && !closed_) tc_.want_flush(shared_from_this());
}

void h2_session::flush() {
  if (writing_ || closed_) return;
  write_buf_.clear();
  while (write_buf_.size() < write_batch_bytes) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return close();
    if (n == 0) break;
    write_buf_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (write_buf_.empty()) {
    // Nothing to write and nothing more to read (GOAWAY written, no stream left).
    if ((going_away_ && streams_.empty()) ||
        (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)))
      close();
    return;
  }
  writing_ = true;
  write_started_ms_ = util::steady_ms();
  auto done = [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    self->on_written(ec, n);
  };
  if (tls_)
    net::async_write(*tls_, net::buffer(write_buf_), std::move(done));
  else
    net::async_write(plain_.socket(), net::buffer(write_buf_), std::move(done));
}

void h2_session::on_written(const boost::system::error_code& ec, std::size_t n) {
  metrics::add(metrics::counter::bytes_out, n);
  writing_ = false;
  if (ec) return close();
  flush();
}

void h2_session::reset_stream(std::int32_t id, std::uint32_t error_code) {
  if (closed_) return;
  metrics::add(metrics::counter::h2_resets_by_server);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
  want_write();
}

h2_stream* h2_session::find(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

int h2_session::on_begin_headers(std::int32_t id) {
  had_stream_ = true;
  metrics::add(metrics::counter::h2_streams);
  if (++opened_in_window_ > max_opened_per_window)
    go_away(NGHTTP2_ENHANCE_YOUR_CALM, metrics::counter::h2_goaway_flood);
  if (going_away_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // refused: GOAWAY is on its way
  streams_.emplace(id, std::make_shared<h2_stream>(shared_from_this(), id));
  return 0;
}

int h2_session::on_header(std::int32_t id, std::string_view name, std::string_view value) {
  auto* s = find(id);
  if (!s) return 0;
  if (s->add_header(name, value)) return 0;
  // A header block four times the bound: no client does that by mistake.
  if (!going_away_) {
    metrics::add(metrics::counter::bad_connections);
    limit_refused(metrics::counter::limit_header_size, "header_size", {{"transport", "h2"}});
    go_away(NGHTTP2_PROTOCOL_ERROR, metrics::counter::h2_goaway_protocol_error);
  }
  return 0;
}

int h2_session::on_frame_recv(std::int32_t id, std::uint8_t type, std::uint8_t flags) {
  if (type == NGHTTP2_RST_STREAM) {
    metrics::add(metrics::counter::h2_resets_by_client);
    if (++resets_in_window_ > max_resets_per_window)
      go_away(NGHTTP2_ENHANCE_YOUR_CALM, metrics::counter::h2_goaway_flood);
    return 0;
  }
  if (type != NGHTTP2_HEADERS && type != NGHTTP2_DATA) return 0;
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  auto s = it->second;  // routing may end the stream
  if (type == NGHTTP2_HEADERS && (flags & NGHTTP2_FLAG_END_HEADERS)) s->headers_done();
  if (flags & NGHTTP2_FLAG_END_STREAM) s->request_done();
  return 0;
}

int h2_session::on_data(std::int32_t id, std::string_view data) {
  if (auto* s = find(id)) s->add_body(data);
  return 0;
}

int h2_session::on_frame_sent(std::int32_t id, std::uint8_t type, std::uint8_t flags) {
  if (type == NGHTTP2_GOAWAY && !going_away_) {
    // nghttp2 ended the connection itself: a protocol error of the peer.
    going_away_ = true;
    metrics::add(metrics::counter::bad_connections);
    metrics::add(metrics::counter::h2_goaway_protocol_error);
    return 0;
  }
  if ((type != NGHTTP2_HEADERS && type != NGHTTP2_DATA) || !(flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  if (auto* s = find(id)) s->response_sent();
  return 0;
}

int h2_session::on_stream_close(std::int32_t id, std::uint32_t) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  auto s = std::move(it->second);
  streams_.erase(it);
  if (streams_.empty()) idle_since_ms_ = util::steady_ms();
  s->closed();
  return 0;
}

void h2_session::on_tick(std::int64_t now_ms) {
  if (closed_) return;
  if (now_ms - window_start_ms_ >= flood_window_ms) {
    window_start_ms_ = now_ms;
    resets_in_window_ = opened_in_window_ = 0;
  }
  const auto request_ms = std::chrono::milliseconds(st_.opts.request_timeout).count();
  if (writing_ && now_ms - write_started_ms_ > request_ms) {
    // The peer reads nothing of what the connection writes: every stream on it is stuck.
    slow_reader_cut("h2", {{"reason", "no progress within the request timeout"}});
    return close();
  }
  std::vector<std::int32_t> stalled;
  for (const auto& [id, s] : streams_)
    if (s->waiting() && now_ms - s->last_progress_ms() > request_ms) stalled.push_back(id);
  for (auto id : stalled) {
    auto* s = find(id);
    if (!s) continue;
    if (s->receiving()) {
      limit_refused(metrics::counter::limit_request_timeout, "request_timeout", {{"transport", "h2"}});
    } else {
      slow_reader_cut("h2", {{"reason", "a response stream moved nothing within the request timeout"}});
    }
    reset_stream(id, NGHTTP2_CANCEL);
  }
  if (!streams_.empty() || going_away_) return;
  const auto idle_ms =
      std::chrono::milliseconds(had_stream_ ? st_.opts.keepalive_timeout : st_.opts.request_timeout).count();
  if (now_ms - idle_since_ms_ > idle_ms) go_away(NGHTTP2_NO_ERROR, metrics::counter::h2_goaway_idle);
}

void h2_session::drain() {
  // No new stream; the open ones end on their own (event streams and held polls are
  // drained like any other), then the connection closes.
  if (!closed_ && !going_away_) go_away(NGHTTP2_NO_ERROR, metrics::counter::h2_goaway_drain);
}

void h2_session::go_away(std::uint32_t error_code, metrics::counter reason) {
  if (closed_ || going_away_) return;
  going_away_ = true;
  metrics::add(reason);
  if (error_code == NGHTTP2_NO_ERROR) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_), error_code,
                          nullptr, 0);
  } else {
    // The connection ends once the GOAWAY is written, and its streams now. They stay
    // allocated until the close: nghttp2 may still hold them as data sources.
    terminating_ = true;
    nghttp2_session_terminate_session(session_, error_code);
    for (auto& [id, s] : streams_) {
      s->closed();
      ending_.push_back(std::move(s));
    }
    streams_.clear();
  }
  want_write();
}

void h2_session::close() {
  if (closed_) return;
  closed_ = true;
  tc_.remove_tickable(this);
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) s->closed();
  ending_.clear();
  boost::system::error_code ignored;
  auto& s = tls_ ? tls_->next_layer().socket() : plain_.socket();
  s.shutdown(tcp_socket::shutdown_both, ignored);
  s.close(ignored);
}

}  // namespace herald::transport
