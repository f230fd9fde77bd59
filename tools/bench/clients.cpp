#include "clients.hpp"

#include "http_head.hpp"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <stdexcept>

namespace herald::bench {

transport parse_transport(const std::string& s) {
  if (s == "ws") return transport::ws;
  if (s == "sse") return transport::sse;
  if (s == "poll") return transport::poll;
  throw std::invalid_argument("transport must be ws, sse or poll");
}

const char* name(transport t) { return t == transport::ws ? "ws" : t == transport::sse ? "sse" : "poll"; }

namespace {


// What a browser sends with each long poll (counted as overhead per round trip).
constexpr std::string_view browser_headers =
    "Host: 127.0.0.1\r\nConnection: keep-alive\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
    "Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
    "Referer: http://127.0.0.1/app\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Site: same-origin\r\n";

}  // namespace

subscriber::subscriber(net::io_context& ioc, transport t, dialect d, tcp::endpoint server, std::string channel,
                       delivery_totals& totals, const tcp::endpoint* source)
    : ioc_(ioc), t_(t), d_(d), socket_(ioc), server_(server), channel_(std::move(channel)), totals_(totals), buf_(16384) {
  if (source) {
    has_source_ = true;
    source_ = *source;
    open_socket();
  }
}

void subscriber::open_socket() {
  if (!has_source_) return;
  socket_.open(tcp::v4());
  socket_.bind(source_);
}

void subscriber::start() {
  socket_.async_connect(server_, [self = shared_from_this(), g = generation_](const boost::system::error_code& ec) {
    if (g != self->generation_) return;
    if (ec) {
      ++self->totals_.errors;
      return;
    }
    self->socket_.set_option(tcp::no_delay(true));
    self->on_connect();
  });
}

void subscriber::reconnect(std::uint64_t target) {
  stop();
  ++generation_;
  stopped_ = false;
  socket_ = tcp::socket(ioc_);
  open_socket();
  in_.clear();
  event_id_.clear();
  headers_done_ = false;
  connected_once_ = false;
  body_left_ = 0;
  catch_up_target_ = replayed_upto_ = target;
  start();
}

void subscriber::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void subscriber::send(std::string bytes) {
  totals_.bytes_out += bytes.size();
  auto b = std::make_shared<std::string>(std::move(bytes));
  net::async_write(socket_, net::buffer(*b), [b](const boost::system::error_code&, std::size_t) {});
}

void subscriber::on_connect() {
  switch (t_) {
    case transport::ws: {
      std::string req = ws_upgrade(d_ == dialect::herald ? "/ws" : "/sub/" + channel_);
      if (d_ == dialect::herald) {
        std::string cmd = R"({"id":1,"method":"subscribe","channel":")" + channel_ + "\"";
        if (keep_cursor_ && !cursor_.empty()) cmd += R"(,"since":")" + cursor_ + "\"";
        if (raw_) cmd += R"(,"format":"raw")";
        req += ws_client_frame(cmd + "}");
      }
      send(std::move(req));  // one write: handshake and subscribe
      break;
    }
    case transport::sse: {
      std::string req = "GET " + (d_ == dialect::herald ? "/sse?channel=" + channel_ : "/sub/" + channel_) +
                        (raw_ ? "&format=raw" : "") + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
      if (keep_cursor_ && !cursor_.empty()) req += "Last-Event-ID: " + cursor_ + "\r\n";
      send(req + "\r\n");
      break;
    }
    case transport::poll:
      ++totals_.connected;  // a held poll has no reply to wait for
      connected_once_ = true;
      send_poll();
      break;
  }
  do_read();
}

void subscriber::send_poll() {
  std::string req;
  if (d_ == dialect::herald) {
    req = "GET /poll?channel=" + channel_ + "&timeout=60&limit=1000";
    if (raw_) req += "&format=raw";
    if (!cursor_.empty()) req += "&since=" + cursor_;
    req += " HTTP/1.1\r\n";
    req += browser_headers;
  } else {
    req = "GET /sub/" + channel_ + " HTTP/1.1\r\n";
    req += browser_headers;
    req += cursor_;  // Nchan's position: If-Modified-Since and If-None-Match (Pushpin: none)
  }
  req += "\r\n";
  headers_done_ = false;
  send(std::move(req));
}

void subscriber::do_read() {
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this(), g = generation_](
                                                 const boost::system::error_code& ec, std::size_t n) {
    if (g != self->generation_) return;
    if (ec) {
      if (!self->stopped_) ++self->totals_.errors;
      return;
    }
    self->totals_.bytes_in += n;
    self->in_.append(self->buf_.data(), n);
    self->parse();
    self->do_read();
  });
}

// A subscription answered with an error status (e.g. a proxy's 502): counted as an
// error, not as connected, and the connection is closed.
void subscriber::refused() {
  ++totals_.errors;
  stop();
}

void subscriber::on_reset() {
  // The server said it skipped ahead: the next offset starts a new count, not a loss.
  ++totals_.resets;
  next_offset_ = 0;
  if (catch_up_target_) caught_up();  // it is live again, from the top
}

void subscriber::caught_up() {
  catch_up_target_ = 0;
  ++totals_.caught_up;
  totals_.last_caught_up_ns = now_ns();
}

void subscriber::on_payload(std::string_view json) {
  // The publisher's sequence number: herald's offset, and what peers deliver too.
  const auto offset = number_after(json, "\"n\":");
  const auto t = static_cast<std::int64_t>(number_after(json, "\"t\":"));
  if (!offset) return;
  if (next_offset_ && offset != next_offset_) {
    if (offset > next_offset_)
      totals_.lost += offset - next_offset_;
    else
      ++totals_.duplicated;
  }
  if (!next_offset_ || offset >= next_offset_) next_offset_ = offset + 1;
  ++totals_.delivered;
  const auto now = now_ns();
  totals_.last_delivery_ns = now;
  if (t && offset > replayed_upto_) totals_.latency.add(now - t);
  if (catch_up_target_ && offset >= catch_up_target_) caught_up();
}

}  // namespace herald::bench
