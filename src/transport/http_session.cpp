#include "transport/http_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include "protocol/channel_name.hpp"
#include "transport/client_events.hpp"
#include "transport/h2_session.hpp"
#include "transport/http_response.hpp"
#include "transport/lingering_close.hpp"
#include "transport/longpoll_request.hpp"
#include "transport/request_head.hpp"
#include "transport/sse_session.hpp"
#include "transport/stream_ingest.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/ws_handshake.hpp"
#include "transport/ws_session.hpp"

namespace herald::transport {

http_session::http_session(tcp_socket socket, thread_context& tc, shared_state& st, ip_slot slot,
                           std::optional<net::ip::address> peer, const std::shared_ptr<net::ssl::context>& tls)
    : http_exchange(tc, st),
      conn_(tls ? decltype(conn_)(std::in_place_type<tcp_socket>, socket.get_executor())
                : decltype(conn_)(std::in_place_type<tcp_stream>, std::move(socket))),
      ip_slot_(std::move(slot)),
      peer_(peer) {
  if (tls) tls_ = std::make_unique<tls_stream>(std::move(socket), *tls);
}

http_session::~http_session() = default;

tcp_stream& http_session::stream() noexcept {
  if (tls_) return tls_->next_layer();
  if (auto* s = std::get_if<tcp_socket>(&conn_)) {
    // After a held poll: the stream again, around the same socket.
    tcp_socket plain = std::move(*s);
    conn_.emplace<tcp_stream>(std::move(plain));
  }
  return std::get<tcp_stream>(conn_);
}

tcp_socket http_session::take_socket() {
  if (tls_) return tls_->next_layer().release_socket();
  if (auto* s = std::get_if<tcp_stream>(&conn_)) {
    s->expires_never();
    return s->release_socket();
  }
  return std::move(std::get<tcp_socket>(conn_));
}

void http_session::run() {
  if (!tls_) return do_read();
  stream().expires_after(st_.opts.tls_handshake_timeout);
  tls_->async_handshake(net::ssl::stream_base::server,
                        [self = self()](beast::error_code ec) { self->on_handshake(ec); });
}

void http_session::on_handshake(beast::error_code ec) {
  if (!ec) {
    count_handshake(handshake_result::ok);
    if (st_.opts.http2 && negotiated_h2(*tls_)) return start_h2({});
    return do_read();
  }
  if (ec == beast::error::timeout) {
    // The TCP stream has closed the socket: a handshake that never finished.
    count_handshake(handshake_result::timeout);
    metrics::add(metrics::counter::bad_connections);
    return;
  }
  metrics::add(metrics::counter::bad_connections);
  if (is_plain_http(ec)) {
    count_handshake(handshake_result::plain_http);
    return refuse_plain_http();
  }
  count_handshake(handshake_result::error);
  close();
}

void http_session::refuse_plain_http() {
  // An http:// URL on the https port: say so in clear text (the client reads HTTP), once,
  // without waiting, then close as any refusal.
  static const std::string reply = [] {
    std::string body =
        R"({"error":{"code":"tls_required","message":"this port speaks HTTPS: use an https:// URL"}})";
    return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }();
  beast::error_code ec;
  auto& s = socket();
  s.non_blocking(true, ec);
  const auto n = s.write_some(net::buffer(reply), ec);
  if (!ec) metrics::add(metrics::counter::bytes_out, n);
  close();
}

void http_session::do_read() {
  reset_request();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(st_.opts.max_header_bytes));
  parser_->body_limit(st_.opts.max_body_bytes);
  stream().expires_after(first_request_ ? st_.opts.request_timeout : st_.opts.keepalive_timeout);
  // The head first: its framing, Host and Expect are checked before any body byte is read.
  with_stream([&](auto& s) {
    http::async_read_header(s, buffer_, *parser_,
                            [self = self()](beast::error_code ec, std::size_t n) { self->on_header(ec, n); });
  });
}

void http_session::on_header(beast::error_code ec, std::size_t bytes) {
  metrics::add(metrics::counter::bytes_in, bytes);
  const bool first = std::exchange(first_request_, false);
  if (ec == http::error::bad_version && first && !tls_ && st_.opts.http2) {
    // The HTTP/2 preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", which Beast refuses, left in
    // the buffer): a client with prior knowledge. nghttp2 reads it with what followed.
    const auto data = buffer_.data();
    const std::string_view read(static_cast<const char*>(data.data()), data.size());
    if (read.starts_with("PRI * HTTP/2.0\r\n")) return start_h2(read);
  }
  if (ec) return on_read_error(ec);
  auto head = check_request_head(parser_->get(), parser_->chunked());
  if (auto* refusal = std::get_if<head_refusal>(&head)) {
    metrics::add(metrics::counter::bad_connections);
    return send_error(refusal->error, true);
  }
  head_ = std::get<request_head>(head);
  if (head_->target.path == "/api/stream") return start_ingest();  // reads its body as it comes
  if (parser_->is_done()) return route();                          // no body
  if (!head_->expects_continue) return read_body();
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  with_stream([&](auto& s) {
    net::async_write(s, net::buffer(continue_line.data(), continue_line.size()),
                     [self = self()](beast::error_code ec, std::size_t n) {
                       metrics::add(metrics::counter::bytes_out, n);
                       if (ec) return self->close();
                       self->read_body();
                     });
  });
}

void http_session::read_body() {
  // Same deadline as the head: the request must arrive whole within request_timeout.
  with_stream([&](auto& s) {
    http::async_read(s, buffer_, *parser_,
                     [self = self()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  });
}

void http_session::on_read(beast::error_code ec, std::size_t bytes) {
  metrics::add(metrics::counter::bytes_in, bytes);
  if (ec) return on_read_error(ec);
  route();
}

void http_session::on_read_error(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
      ec == net::error::connection_reset) {
    // Gone between requests is normal; gone in the middle of one is counted.
    if (ec != net::error::operation_aborted && (buffer_.size() != 0 || parser_->got_some()))
      metrics::add(metrics::counter::bad_connections);
    return close();
  }
  if (ec == beast::error::timeout) {
    // The stream has closed the socket already: an idle keep-alive connection ends, a
    // request cut short (slowloris) is counted.
    if (buffer_.size() != 0 || parser_->got_some()) {
      metrics::add(metrics::counter::bad_connections);
      limit_refused(metrics::counter::limit_request_timeout, "request_timeout");
    }
    return;
  }
  metrics::add(metrics::counter::bad_connections);
  if (ec == http::error::header_limit) {
    limit_refused(metrics::counter::limit_header_size, "header_size");
    return send_error(
        {431, "too_large", "request headers exceed " + std::to_string(st_.opts.max_header_bytes) + " bytes"}, true);
  }
  if (ec == http::error::body_limit) {
    limit_refused(metrics::counter::limit_message_size, "message_size", {{"what", "request body"}});
    return send_error({413, "too_large", "request body exceeds " + std::to_string(st_.opts.max_body_bytes) + " bytes"},
                      true);
  }
  send_error({400, "bad_request", "malformed HTTP request: " + ec.message()}, true);
}

void http_session::start_ingest() {
  metrics::add(metrics::counter::http_requests);
  auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  head_only_ = false;
  cors_.clear();
  ws_accept_.reset();
  if (req.method() != http::verb::post) {
    keep_alive_ = keep_alive_ && parser_->is_done();  // a body, if any, is not read
    auto r = api::error_response({405, "method_not_allowed", "use POST for /api/stream"});
    r.headers.emplace_back("Allow", "POST");
    return send_api_response(std::move(r));
  }
  auto refuse = [&](const util::api_error& e) {
    if (!parser_->is_done()) keep_alive_ = false;
    send_error(e);
  };
  if (auto err = st_.api.check_key(req[http::field::authorization])) {
    auto r = api::error_response(*err);
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
    if (!parser_->is_done()) keep_alive_ = false;
    return send_api_response(std::move(r));
  }
  std::string channel;
  if (auto it = head_->target.params.find("channel"); it != head_->target.params.end()) channel = (*it).value;
  if (channel.empty()) return refuse(util::bad_request("bad_request", "missing parameter channel"));
  if (!protocol::valid_channel_name(channel))
    return refuse(util::bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])"));
  auto k = stream_ingest::kind_of(req[http::field::content_type]);
  if (!k)
    return refuse({415, "unsupported_media_type",
                   "Content-Type must be text/plain, application/x-ndjson or text/event-stream"});
  const bool expects_continue = head_->expects_continue;
  head_.reset();  // its views go with the parser, which the ingest takes over
  auto ingest = std::make_shared<stream_ingest>(self(), std::move(channel), *k);
  ingest->start(expects_continue);
}

void http_session::open_sse(subscribe_request sub, const auth::identity& who) {
  tcp_socket plain(tc_.ioc());
  std::unique_ptr<tls_stream> tls;
  hand_over(plain, tls);
  auto s = std::make_shared<sse_session>(std::move(plain), std::move(tls), tc_, st_);
  s->adopt(who, std::move(ip_slot_));
  if (!client_id_.empty()) s->set_client_id(std::move(client_id_));
  s->start(std::move(sub), std::move(cors_));
}

std::optional<net::ip::address> http_session::peer_address() {
  if (!peer_) close();
  return peer_;
}

void http_session::watch_close(std::shared_ptr<longpoll_request> p) {
  // While held, readable with nothing to read means the client went away. Readable
  // with bytes is the next request, read once this one is answered.
  stream().expires_never();
  socket().async_wait(tcp_socket::wait_read,
                      // `p` keeps this session alive (its exchange).
                      tc_.idle_wait([this, p = std::move(p)](const boost::system::error_code& ec) {
                        boost::system::error_code aec;
                        if (p->answered() || (!ec && socket().available(aec) != 0)) return;
                        p->client_gone();
                        boost::system::error_code ignored;
                        socket().close(ignored);
                      }));
}

void http_session::start_ws(const auth::identity* who, const util::api_error* refusal, std::uint16_t close_code) {
  const auto early = buffer_.data();
  std::string leftover(static_cast<const char*>(early.data()), early.size());
  tcp_socket plain(tc_.ioc());
  std::unique_ptr<tls_stream> tls;
  hand_over(plain, tls);
  auto ws = std::make_shared<ws_session>(std::move(plain), std::move(tls), tc_, st_, ws_accept_->deflate);
  if (refusal) {
    // Browsers cannot read an HTTP refusal of an upgrade: open, then close with a code
    // that says what to do (4003: refresh the token; 4101: do not retry with it).
    const auto code = close_code                         ? close_code
                      : refusal->code == "token_expired" ? protocol::ws_close::token_expired
                      : refusal->status == 503           ? protocol::ws_close::broker_unavailable
                                                         : protocol::ws_close::unauthorized;
    ws->start_refused(ws_accept_->response, code, refusal->message);
    return;
  }
  ws->adopt(*who, std::move(ip_slot_));
  if (!client_id_.empty()) ws->set_client_id(std::move(client_id_));
  ws->start(ws_accept_->response, std::move(leftover));
}

void http_session::response_head(int status, std::string_view content_type, long long content_length,
                                 const header_list& headers) {
  out_.push_copy(http_head(status, content_type, content_length, keep_alive_, headers));
}

void http_session::release_request() {
  head_.reset();
  parser_.reset();
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  if (auto* s = std::get_if<tcp_stream>(&conn_); s && !tls_) {
    // Held: the wait for readable (watch_close) goes on with the socket, which moves
    // out of the stream without its operation noticing.
    s->expires_never();
    tcp_socket plain = std::move(s->socket());
    conn_.emplace<tcp_socket>(std::move(plain));
  }
}

void http_session::send() {
  writing_.emplace(buffer_view(out_.start()));
  write_some();
}

void http_session::write_some() {
  // The deadline is per step, not for the whole reply: a slow link that keeps reading
  // gets a big reply whole, one that stalls is cut (a reply is bounded by bytes too).
  stream().expires_after(st_.opts.request_timeout);
  with_stream([&](auto& s) {
    s.async_write_some(*writing_, [self = self()](beast::error_code ec, std::size_t n) { self->on_write_some(ec, n); });
  });
}

void http_session::on_write_some(beast::error_code ec, std::size_t bytes) {
  metrics::add(metrics::counter::bytes_out, bytes);
  if (!ec) {
    writing_->consume(bytes);
    if (beast::buffer_bytes(*writing_) != 0) return write_some();
  } else if (ec == beast::error::timeout) {
    slow_reader_cut("http", {{"reason", "no progress within the request timeout"}});
  }
  writing_.reset();
  out_.done();
  if (ec) return close();
  on_written();
}

void http_session::on_written() {
  if (!out_.empty()) return send();
  if (!keep_alive_) return close();
  do_read();
}

void http_session::close() {
  // Also after an error reply: the client reads it whole, even when it was still
  // sending (lingering_close.hpp).
  // With TLS no close_notify is sent: every reply is delimited by its length, and a
  // stream's end by its own event (docs/deploy.md).
  if (socket().is_open()) lingering_close(take_socket(), tc_);
}

void http_session::start_h2(std::string_view already_read) {
  tcp_socket plain(tc_.ioc());
  std::unique_ptr<tls_stream> tls;
  hand_over(plain, tls);
  auto h2 = std::make_shared<h2_session>(std::move(tls), tcp_stream(std::move(plain)), tc_, st_, std::move(ip_slot_));
  h2->start(already_read);
}

void http_session::hand_over(tcp_socket& plain, std::unique_ptr<tls_stream>& tls) {
  if (tls_) {
    stream().expires_never();
    tls = std::move(tls_);
  } else {
    plain = take_socket();
  }
}

}  // namespace herald::transport
