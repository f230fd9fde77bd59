#include "clients.hpp"

#include "wire.hpp"

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

// `s` as a JSON string literal.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out + '"';
}

// The quoted value after the last `key` (e.g. "\"cursor\":\""), empty when none.
std::string_view string_after_last(std::string_view s, std::string_view key) {
  auto p = s.rfind(key);
  if (p == std::string_view::npos) return {};
  p += key.size();
  auto end = s.find('"', p);
  return end == std::string_view::npos ? std::string_view{} : s.substr(p, end - p);
}


constexpr std::string_view ws_upgrade =
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";


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
      const std::string path = d_ == dialect::herald ? "/ws" : "/sub/" + channel_;
      std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
      if (d_ == dialect::herald) {
        std::string cmd = R"({"id":1,"method":"subscribe","channel":")" + channel_ + "\"";
        if (keep_cursor_ && !cursor_.empty()) cmd += R"(,"since":")" + cursor_ + "\"";
        req += ws_client_frame(cmd + "}");
      }
      send(std::move(req));  // one write: handshake and subscribe
      break;
    }
    case transport::sse: {
      std::string req = "GET " + (d_ == dialect::herald ? "/sse?channel=" + channel_ : "/sub/" + channel_) +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
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

void subscriber::parse() {
  if (t_ == transport::ws) {
    if (!headers_done_) {
      auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      headers_done_ = true;
      if (!in_.starts_with("HTTP/1.1 101")) return refused();
      if (d_ != dialect::herald) ++totals_.connected;  // subscribed by the URL itself
      in_.erase(0, end + 4);
    }
    const auto used = ws_frames(in_, [&](std::string_view payload) {
      if (stopped_) return;
      auto keep = [&] {
        if (!keep_cursor_) return;
        auto c = string_after_last(payload, "\"cursor\":\"");
        if (!c.empty()) cursor_.assign(c);
      };
      if (payload.starts_with("{\"reset\"")) {
        keep();
        on_reset();
      } else if (payload.starts_with("{\"id\":1,\"result\"")) {
        ++totals_.connected;
        keep();  // the position before the replayed pushes
        if (payload.find("\"recovered\":false") != std::string_view::npos) on_reset();
      } else if (payload.starts_with("{\"id\":1,\"error\"")) {
        refused();  // e.g. bad_cursor: not a subscriber
      } else if (payload.find("\"t\":") != std::string_view::npos) {
        on_payload(payload);
        keep();
      }
    });
    in_.erase(0, used);
    return;
  }
  if (t_ == transport::sse) {
    if (!headers_done_) {
      auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      headers_done_ = true;
      if (!in_.starts_with("HTTP/1.1 200")) return refused();
      ++totals_.connected;
      in_.erase(0, end + 4);
    }
    std::size_t pos = 0;
    for (;;) {
      auto nl = in_.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(in_.data() + pos, nl - pos);
      if (line == "event: reset") on_reset();
      else if (line.starts_with("data: ")) on_payload(line.substr(6));
      else if (keep_cursor_ && line.starts_with("id: ")) event_id_.assign(line.substr(4));
      else if (line.empty() && !event_id_.empty()) cursor_.swap(event_id_), event_id_.clear();  // the event is whole
      pos = nl + 1;
    }
    in_.erase(0, pos);
    return;
  }
  // Long polling: one response per request, then the next poll with the new cursor.
  for (;;) {
    if (!headers_done_) {
      auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      std::string_view head(in_.data(), end);
      if (!head.starts_with("HTTP/1.1 2")) return refused();
      body_left_ = number_after(head, "Content-Length: ");
      if (d_ == dialect::peer) {
        // Nchan long polling: the next request carries these two headers back.
        auto header = [&](std::string_view name) {
          auto p = head.find(name);
          if (p == std::string_view::npos) return std::string_view{};
          p += name.size();
          return head.substr(p, head.find("\r\n", p) - p);
        };
        cursor_ = "If-Modified-Since: " + std::string(header("Last-Modified: ")) + "\r\nIf-None-Match: " +
                  std::string(header("Etag: ")) + "\r\n";
      }
      headers_done_ = true;
      in_.erase(0, end + 4);
    }
    if (in_.size() < body_left_) return;
    std::string_view body(in_.data(), body_left_);
    if (!connected_once_) {
      connected_once_ = true;
      ++totals_.connected;
    }
    if (d_ != dialect::herald) {
      on_payload(body);  // one raw message per reply
      in_.erase(0, body_left_);
      if (!stopped_) send_poll();
      continue;
    }
    if (body.find("\"recovered\":false") != std::string_view::npos) on_reset();
    for (std::size_t p = body.find("{\"channel\""); p != std::string_view::npos; p = body.find("{\"channel\"", p + 1))
      on_payload(body.substr(p, body.find("}}", p) - p));
    auto c = body.rfind("\"cursor\":\"");
    if (c != std::string_view::npos) {
      auto start = c + 10;
      cursor_.assign(body.substr(start, body.find('"', start) - start));
    }
    in_.erase(0, body_left_);
    if (!stopped_) send_poll();
  }
}

chat_client::chat_client(net::io_context& ioc, tcp::endpoint server, std::string channel, std::size_t index,
                         std::size_t senders, std::size_t count, std::size_t size, std::size_t window, double rate,
                         std::int64_t offset_ns, delivery_totals& totals, const tcp::endpoint* source)
    : ioc_(ioc), socket_(ioc), server_(server), channel_(std::move(channel)), index_(index), senders_(senders),
      count_(count), size_(size), window_(std::max<std::size_t>(1, window)), rate_(rate), offset_ns_(offset_ns),
      totals_(totals), buf_(65536), seen_(senders * (count + 1)), highest_(senders), timer_(ioc) {
  if (source) {
    socket_.open(tcp::v4());
    socket_.bind(*source);
  }
}

void chat_client::start() {
  socket_.async_connect(server_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      ++self->totals_.errors;
      return;
    }
    self->socket_.set_option(tcp::no_delay(true));
    self->send(std::string(ws_upgrade) +
               ws_client_frame(R"({"id":1,"method":"subscribe","channel":")" + self->channel_ + "\"}"));
    self->do_read();
  });
}

void chat_client::stop() {
  stopped_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
}


void chat_client::send(std::string bytes) {
  totals_.bytes_out += bytes.size();
  out_.pending += bytes;
  out_.start(socket_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->send({});
  });
}

void chat_client::start_publishing(std::int64_t t0_ns) {
  t0_ = t0_ns;
  publishing_ = true;
  pump();
}

void chat_client::pump() {
  if (!publishing_ || stopped_) return;
  const auto now = now_ns();
  while (sent_ < count_ && sent_ - acked_ - failed_ < window_) {
    {
      // Publish k of this client is due at t0 + offset + k / rate (unpaced: at t0).
      const auto due = t0_ + offset_ns_ +
                       (rate_ > 0 ? static_cast<std::int64_t>(static_cast<double>(sent_) * 1e9 / rate_) : 0);
      if (due > now) {
        if (!timer_armed_) {
          timer_armed_ = true;
          timer_.expires_after(std::chrono::nanoseconds(due - now));
          timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            self->timer_armed_ = false;
            if (!ec) self->pump();
          });
        }
        break;
      }
    }
    ++sent_;
    // data: {"t":<send time>,"s":<sender>,"n":<its sequence number>,"p":"xx..."} padded to `size` bytes
    std::string data = R"({"t":)" + std::to_string(now_ns()) + R"(,"s":)" + std::to_string(index_) + R"(,"n":)" +
                       std::to_string(sent_) + R"(,"p":")";
    if (data.size() + 2 < size_) data.append(size_ - data.size() - 2, 'x');
    data += "\"}";
    send(ws_client_frame(R"({"id":)" + std::to_string(sent_ + 1) + R"(,"method":"publish","channel":")" + channel_ +
                         R"(","data":)" + data + "}"));
  }
}

void chat_client::do_read() {
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                        std::size_t n) {
    if (ec) {
      if (!self->stopped_) ++self->totals_.errors;
      return;
    }
    self->totals_.bytes_in += n;
    self->in_.append(self->buf_.data(), n);
    self->parse();
    if (!self->stopped_) self->do_read();
  });
}

void chat_client::parse() {
  if (!headers_done_) {
    auto end = in_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    headers_done_ = true;
    if (!in_.starts_with("HTTP/1.1 101")) {
      ++totals_.errors;
      return stop();
    }
    in_.erase(0, end + 4);
  }
  const auto used = ws_frames(in_, [&](std::string_view payload) {
    if (!stopped_) on_frame(payload);
  });
  in_.erase(0, used);
}

void chat_client::on_frame(std::string_view payload) {
  if (payload.starts_with("{\"push\"")) {
    const auto d = payload.find("\"data\":");
    if (d == std::string_view::npos) return;
    const auto t = static_cast<std::int64_t>(number_after(payload, "\"t\":", d));
    const auto s = number_after(payload, "\"s\":", d);
    const auto n = number_after(payload, "\"n\":", d);
    if (s >= senders_ || n < 1 || n > count_) {
      ++totals_.errors;  // not one of this run's messages
      return;
    }
    const auto now = now_ns();
    ++totals_.delivered;
    totals_.last_delivery_ns = now;
    if (t) totals_.latency.add(now - t);
    const auto at = s * (count_ + 1) + n;
    if (seen_[at]) {
      ++totals_.duplicated;
      return;
    }
    seen_[at] = true;
    if (n < highest_[s]) ++totals_.reordered;  // after a later message of the same sender
    else highest_[s] = n;
    return;
  }
  if (payload.starts_with("{\"id\":")) {
    const auto id = number_after(payload, "{\"id\":");
    const bool ok = payload.find("\"result\"") != std::string_view::npos &&
                    payload.find("\"error\"") == std::string_view::npos;
    if (id == 1) {  // the subscribe
      if (ok) {
        ++totals_.connected;
      } else {
        ++totals_.errors;
        stop();
      }
      return;
    }
    if (ok) ++acked_, ++totals_.published;
    else ++failed_, ++totals_.publish_failed;
    return pump();
  }
  if (payload.starts_with("{\"reset\"")) ++totals_.resets;
}

publisher::publisher(net::io_context& ioc, dialect d, tcp::endpoint server, std::vector<std::string> channels,
                     std::size_t count, std::size_t size, std::size_t window, double rate, std::function<void()> done,
                     std::size_t first)
    : ioc_(ioc), d_(d), socket_(ioc), server_(server), channels_(std::move(channels)), count_(count), size_(size),
      window_(window), rate_(rate), done_(std::move(done)), first_(first), buf_(65536), timer_(ioc) {}

void publisher::start() {
  if (d_ == dialect::pushpin) {
    start_ns_ = now_ns();
    return pump();
  }
  socket_.async_connect(server_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) throw std::runtime_error("publisher cannot connect: " + ec.message());
    self->socket_.set_option(tcp::no_delay(true));
    self->start_ns_ = now_ns();
    self->pump();
    self->do_read();
  });
}

void publisher::pump() {
  if (sent_ < count_ && rate_ > 0) {
    // Paced: no more than rate * elapsed messages so far.
    const double elapsed = static_cast<double>(now_ns() - start_ns_) / 1e9;
    if (static_cast<double>(sent_) >= rate_ * elapsed) {
      timer_.expires_after(std::chrono::microseconds(static_cast<long>(1e6 / rate_) + 1));
      timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->pump();
      });
      return;
    }
  }
  while (sent_ < count_ && sent_ - acked_ - failed_ < window_) {
    if (rate_ > 0 && static_cast<double>(sent_) >= rate_ * static_cast<double>(now_ns() - start_ns_) / 1e9) break;
    const auto& ch = channels_[sent_ % channels_.size()];
    // data: {"t":<send time>,"n":<sequence in its channel>,"p":"xx..."} padded to `size` bytes
    std::string data = R"({"t":)" + std::to_string(now_ns()) + R"(,"n":)" +
                       std::to_string(sent_ / channels_.size() + first_) + R"(,"p":")";
    if (data.size() + 2 < size_) data.append(size_ - data.size() - 2, 'x');
    data += "\"}";
    const bool herald = d_ == dialect::herald;
    std::string body = herald ? R"({"channel":")" + ch + R"(","data":)" + data + "}" : data;
    std::string target = herald ? std::string("/api/publish") : "/pub/" + ch;
    if (d_ == dialect::pushpin) {
      // One item in every format, as an application serving all three transports publishes.
      const auto s = json_string(data);
      body = R"({"items":[{"channel":")" + ch + R"(","formats":{"http-stream":{"content":)" +
             json_string("data: " + data + "\n\n") + R"(},"http-response":{"body":)" + s +
             R"(},"ws-message":{"content":)" + s + "}}}]}";
      target = "/publish/";
    }
    std::string req = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    ++sent_;
    if (d_ == dialect::pushpin) send_once(std::move(req));
    else out_.pending += req;
  }
  out_.start(socket_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->pump();
  });
  if (sent_ < count_ && rate_ > 0 && sent_ - acked_ - failed_ < window_) {
    timer_.expires_after(std::chrono::microseconds(static_cast<long>(1e6 / rate_) + 1));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->pump();
    });
  }
}

// Pushpin's publish endpoint answers "Connection: close": one connection per request.
void publisher::send_once(std::string request) {
  auto sock = std::make_shared<tcp::socket>(ioc_);
  auto req = std::make_shared<std::string>(std::move(request));
  sock->async_connect(server_, [self = shared_from_this(), sock, req](const boost::system::error_code& ec) {
    if (ec) return self->on_reply(false);
    net::async_write(*sock, net::buffer(*req), [self, sock, req](const boost::system::error_code& ec, std::size_t) {
      if (ec) return self->on_reply(false);
      self->read_once(sock, std::make_shared<std::string>());
    });
  });
}

void publisher::read_once(std::shared_ptr<tcp::socket> sock, std::shared_ptr<std::string> in) {
  auto buf = std::make_shared<std::array<char, 1024>>();
  sock->async_read_some(net::buffer(*buf), [self = shared_from_this(), sock, in, buf](
                                               const boost::system::error_code& ec, std::size_t n) {
    in->append(buf->data(), n);
    const auto end = in->find("\r\n\r\n");
    const bool complete =
        end != std::string::npos &&
        in->size() >= end + 4 + number_after(std::string_view(*in).substr(0, end), "Content-Length: ");
    if (complete || ec) {
      boost::system::error_code ignored;
      sock->close(ignored);
      return self->on_reply(complete && in->starts_with("HTTP/1.1 2"));
    }
    self->read_once(sock, in);
  });
}

void publisher::on_reply(bool ok) {
  if (ok) ++acked_;
  else ++failed_;
  if (acked_ + failed_ >= count_) return done_();
  pump();
}

void publisher::do_read() {
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                        std::size_t n) {
    if (ec) return;
    self->in_.append(self->buf_.data(), n);
    for (;;) {
      auto end = self->in_.find("\r\n\r\n");
      if (end == std::string::npos) break;
      auto len = number_after(std::string_view(self->in_).substr(0, end), "Content-Length: ");
      if (self->in_.size() < end + 4 + len) break;
      if (self->in_.starts_with("HTTP/1.1 2")) ++self->acked_;
      else ++self->failed_;
      self->in_.erase(0, end + 4 + len);
    }
    if (self->acked_ + self->failed_ >= self->count_) return self->done_();
    self->pump();
    self->do_read();
  });
}

}  // namespace herald::bench
