#include "transport/http_session.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include "core/hub.hpp"
#include "protocol/channel_name.hpp"
#include "protocol/json_fields.hpp"
#include "transport/client_events.hpp"
#include "transport/hooks.hpp"
#include "transport/http_response.hpp"
#include "transport/lingering_close.hpp"
#include "transport/longpoll_request.hpp"
#include "transport/origin_policy.hpp"
#include "transport/request_head.hpp"
#include "transport/sse_session.hpp"
#include "transport/stream_ingest.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/ws_handshake.hpp"
#include "transport/ws_session.hpp"

namespace herald::transport {

http_session::http_session(tcp::socket socket, thread_context& tc, shared_state& st, ip_slot slot,
                           const std::shared_ptr<net::ssl::context>& tls)
    : stream_(tls ? tcp::socket(socket.get_executor()) : std::move(socket)),
      tc_(tc),
      st_(st),
      ip_slot_(std::move(slot)) {
  if (tls) tls_ = std::make_unique<tls_stream>(std::move(socket), *tls);
}

http_session::~http_session() = default;

void http_session::run() {
  if (!tls_) return do_read();
  stream().expires_after(st_.opts.tls_handshake_timeout);
  tls_->async_handshake(net::ssl::stream_base::server,
                        [self = shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
}

void http_session::on_handshake(beast::error_code ec) {
  if (!ec) {
    count_handshake(handshake_result::ok);
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
  hooked_body_.reset();
  client_id_.clear();
  parser_.emplace();
  head_.reset();
  parser_->header_limit(static_cast<std::uint32_t>(st_.opts.max_header_bytes));
  parser_->body_limit(st_.opts.max_body_bytes);
  stream().expires_after(first_request_ ? st_.opts.request_timeout : st_.opts.keepalive_timeout);
  // The head first: its framing, Host and Expect are checked before any body byte is read.
  with_stream([&](auto& s) {
    http::async_read_header(s, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_header(ec, n); });
  });
}

void http_session::on_header(beast::error_code ec, std::size_t bytes) {
  metrics::add(metrics::counter::bytes_in, bytes);
  first_request_ = false;
  if (ec) return on_read_error(ec);
  auto head = check_request_head(parser_->get(), parser_->chunked());
  if (auto* refusal = std::get_if<head_refusal>(&head)) {
    metrics::add(metrics::counter::bad_connections);
    return send_error(refusal->error, true);
  }
  head_ = std::get<request_head>(head);
  if (head_->target.path == "/api/stream") return start_ingest();  // reads its body as it comes
  if (parser_->is_done()) return handle_request();  // no body
  if (!head_->expects_continue) return read_body();
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  with_stream([&](auto& s) {
    net::async_write(s, net::buffer(continue_line.data(), continue_line.size()),
                     [self = shared_from_this()](beast::error_code ec, std::size_t n) {
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
                     [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  });
}

void http_session::on_read(beast::error_code ec, std::size_t bytes) {
  metrics::add(metrics::counter::bytes_in, bytes);
  if (ec) return on_read_error(ec);
  handle_request();
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

namespace {

bool is_client_path(std::string_view path) {
  return path == "/sse" || path == "/poll" || path == "/ws" || path == "/publish" || path == "/ticket" ||
         path == "/stop";
}

}  // namespace

void http_session::handle_request() {
  metrics::add(metrics::counter::http_requests);
  auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  head_only_ = req.method() == http::verb::head;
  cors_.clear();
  ws_accept_.reset();
  const std::string_view path = head_->target.path;
  if (!is_client_path(path)) return call_api(path, head_->target.params, nullptr);

  // Browser origins. /ws checks its Origin in the handshake (no CORS there).
  if (path != "/ws") {
    auto v = check_origin(req[http::field::origin], head_->host, st_.opts);
    const bool preflight = req.method() == http::verb::options;
    if (!v.allowed || (preflight && v.cross_origin && v.headers.empty())) {
      metrics::add(metrics::counter::origin_refused);
      return send_error(
          {403, "origin_not_allowed", "origin not allowed: " + std::string(req[http::field::origin].substr(0, 200))});
    }
    if (preflight) {
      api::response r;
      r.status = 204;
      r.headers = preflight_headers(v);
      return send_api_response(std::move(r));
    }
    cors_ = std::move(v.headers);
  }

  if (path == "/sse" || path == "/poll") {
    if (req.method() != http::verb::get) {
      auto r = api::error_response({405, "method_not_allowed", "use GET for " + std::string(path)});
      r.headers.emplace_back("Allow", "GET");
      return send_api_response(std::move(r));
    }
  } else if (path == "/ws") {
    auto hs = ws_handshake(req, st_.opts);
    if (auto* refusal = std::get_if<ws_refusal>(&hs)) {
      if (refusal->error.code == "origin_not_allowed") metrics::add(metrics::counter::origin_refused);
      auto r = api::error_response(refusal->error);
      r.headers = std::move(refusal->headers);
      return send_api_response(std::move(r));
    }
    ws_accept_ = std::move(std::get<ws_accept>(hs));
  } else if (path == "/ticket") {
    return call_api(path, head_->target.params, nullptr);  // authenticated by its handler
  }

  auth::credentials creds;
  std::string ticket;  // params decode into owned strings
  if (auto it = req.find(http::field::authorization); it != req.end()) creds.authorization = it->value();
  if (auto it = head_->target.params.find("ticket"); it != head_->target.params.end()) ticket = (*it).value;
  creds.ticket = ticket;
  if (creds.authorization.empty() && creds.ticket.empty()) return dispatch(auth::identity{});  // anonymous
  const auto t = tc_.index();
  // Views into the request (alive: nothing is read until this request is answered).
  st_.auth.authenticate(creds, [self = shared_from_this(), t](auth::authorizer::auth_result r) {
    self->st_.core.hubs.run_on(t, [self, r = std::move(r)]() mutable { self->dispatch(std::move(r)); });
  });
}

void http_session::dispatch(auth::authorizer::auth_result result) {
  const std::string_view path = head_->target.path;
  const auto params = head_->target.params;
  auto* refusal = std::get_if<util::api_error>(&result);
  if (path == "/ws" && !refusal && st_.backend_hooks && st_.backend_hooks->enabled(protocol::hook_kind::connect))
    return ask_ws_connect_hook(std::get<auth::identity>(result));
  if (path == "/ws") return start_ws(refusal ? nullptr : &std::get<auth::identity>(result), refusal);
  if (refusal) return send_error(*refusal);
  auto& who = std::get<auth::identity>(result);
  if (path == "/publish" && st_.backend_hooks && st_.backend_hooks->enabled(protocol::hook_kind::publish))
    return ask_publish_hook(params, std::move(who));
  if (path == "/publish" || path == "/stop") return call_api(path, params, std::move(who));
  start_stream(path, params, who);
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
  auto ingest = std::make_shared<stream_ingest>(shared_from_this(), std::move(channel), *k);
  ingest->start(expects_continue);
}

void http_session::start_stream(std::string_view path, boost::urls::params_view params, const auth::identity& who) {
  auto& req = parser_->get();
  std::string_view last_id;
  if (auto it = req.find("Last-Event-ID"); it != req.end()) last_id = it->value();
  auto parsed = parse_subscribe_request(params, last_id, st_.opts);
  if (auto* err = std::get_if<util::api_error>(&parsed)) {
    if (err->code == "too_many_channels")
      limit_refused(metrics::counter::limit_channels_per_connection, "channels_per_connection");
    return send_error(*err);
  }
  auto& sub = std::get<subscribe_request>(parsed);
  for (const auto& ch : sub.channels)
    if (auto err = st_.auth.may_subscribe(who, ch)) return send_error(*err);
  if (stream_hooked()) return ask_stream_hooks(path, std::move(sub), who);
  open_stream(path, std::move(sub), who);
}

void http_session::open_stream(std::string_view path, subscribe_request sub, const auth::identity& who) {
  if (path == "/sse") {
    tcp::socket plain(tc_.ioc());
    std::unique_ptr<tls_stream> tls;
    hand_over(plain, tls);
    auto s = std::make_shared<sse_session>(std::move(plain), std::move(tls), tc_, st_);
    s->adopt(who, std::move(ip_slot_));
    if (!client_id_.empty()) s->set_client_id(std::move(client_id_));
    s->start(std::move(sub), std::move(cors_));
    return;
  }
  ip_slot poll_slot;
  // The peer may have reset the connection already: that is its end, not an exception.
  beast::error_code ec;
  const auto peer = socket().remote_endpoint(ec);
  if (ec) return close();
  if (!st_.polls_per_ip.acquire(peer.address(), poll_slot)) {
    limit_refused(metrics::counter::limit_polls_per_ip, "polls_per_ip", {{"addr", peer.address().to_string()}});
    return send_error({429, "too_many_polls",
                       "at most " + std::to_string(st_.polls_per_ip.limit()) + " long polls held per address"});
  }
  stream().expires_never();
  auto p = std::make_shared<longpoll_request>(shared_from_this(), who, std::move(poll_slot));
  if (!client_id_.empty()) p->set_client_id(std::move(client_id_));
  p->start(std::move(sub));
}

void http_session::start_ws(const auth::identity* who, const util::api_error* refusal, std::uint16_t close_code) {
  const auto early = buffer_.data();
  std::string leftover(static_cast<const char*>(early.data()), early.size());
  tcp::socket plain(tc_.ioc());
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

void http_session::call_api(std::string_view path, boost::urls::params_view params, auth::identity who) {
  auto& req = parser_->get();
  api::request areq;
  areq.method = req.method_string();
  areq.path = path;
  areq.params = params;
  if (auto it = req.find(http::field::authorization); it != req.end()) areq.authorization = it->value();
  areq.body = hooked_body_ ? std::string_view(*hooked_body_) : std::string_view(req.body());
  areq.who = std::move(who);
  const auto t = tc_.index();
  areq.thread = t;
  st_.api.handle(areq, [self = shared_from_this(), t](api::response r) {
    self->st_.core.hubs.run_on(t, [self, r = std::move(r)]() mutable { self->send_api_response(std::move(r)); });
  });
}

void http_session::send_api_response(api::response r) {
  if (r.status >= 500)
    metrics::add(metrics::counter::http_server_errors);
  else if (r.status >= 400)
    metrics::add(metrics::counter::http_client_errors);
  if (!cors_.empty()) r.headers.insert(r.headers.end(), cors_.begin(), cors_.end());
  // Every 401 names its scheme (RFC 9110 11.6.1).
  if (r.status == 401 &&
      std::none_of(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.first == "WWW-Authenticate"; }))
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
  // 204 (preflights) carries neither a body nor its headers (RFC 9110 8.6).
  const bool no_content = r.status == 204;
  out_.push_copy(http_head(r.status, no_content ? "" : r.content_type,
                           no_content ? -1 : static_cast<long long>(r.body.size()), keep_alive_, r.headers));
  if (!head_only_) out_.push_copy(r.body);
  send();
}

void http_session::send_error(const util::api_error& e, bool close_after) {
  if (close_after) keep_alive_ = false;
  send_api_response(api::error_response(e));
}

void http_session::release_request() {
  head_.reset();
  parser_.reset();
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
}

void http_session::send() {
  writing_.emplace(out_.start());
  write_some();
}

void http_session::write_some() {
  // The deadline is per step, not for the whole reply: a slow link that keeps reading
  // gets a big reply whole, one that stalls is cut (a reply is bounded by bytes too).
  stream().expires_after(st_.opts.request_timeout);
  with_stream([&](auto& s) {
    s.async_write_some(*writing_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_write_some(ec, n); });
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
  if (socket().is_open()) lingering_close(stream().release_socket(), tc_);
}

void http_session::hand_over(tcp::socket& plain, std::unique_ptr<tls_stream>& tls) {
  stream().expires_never();
  if (tls_)
    tls = std::move(tls_);
  else
    plain = stream_.release_socket();
}

}  // namespace herald::transport
