#include "clients.hpp"

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

std::uint64_t number_after(std::string_view s, std::string_view key, std::size_t from = 0) {
  auto p = s.find(key, from);
  if (p == std::string_view::npos) return 0;
  std::uint64_t v = 0;
  std::from_chars(s.data() + p + key.size(), s.data() + s.size(), v);
  return v;
}

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

}  // namespace

subscriber::subscriber(net::io_context& ioc, transport t, dialect d, tcp::endpoint server, std::string channel,
                       delivery_totals& totals, const tcp::endpoint* source)
    : ioc_(ioc), t_(t), d_(d), socket_(ioc), server_(server), channel_(std::move(channel)), totals_(totals), buf_(16384) {
  if (source) {
    socket_.open(tcp::v4());
    socket_.bind(*source);
  }
}

void subscriber::start() {
  socket_.async_connect(server_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      ++self->totals_.errors;
      return;
    }
    self->socket_.set_option(tcp::no_delay(true));
    self->on_connect();
  });
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
      send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
      if (d_ == dialect::herald) {
        std::string cmd = R"({"id":1,"method":"subscribe","channel":")" + channel_ + "\"}";
        std::string frame{static_cast<char>(0x81), static_cast<char>(0x80 | cmd.size()), 0, 0, 0, 0};
        send(frame + cmd);  // masked with a zero key
      }
      break;
    }
    case transport::sse:
      send("GET " + (d_ == dialect::herald ? "/sse?channel=" + channel_ : "/sub/" + channel_) +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
      break;
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
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                        std::size_t n) {
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
  if (t) totals_.latency.add(now_ns() - t);
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
    std::size_t pos = 0;
    while (in_.size() - pos >= 2) {
      const auto b1 = static_cast<std::uint8_t>(in_[pos + 1]) & 0x7f;
      std::size_t head = 2, len = b1;
      if (b1 == 126) {
        if (in_.size() - pos < 4) break;
        len = (static_cast<std::uint8_t>(in_[pos + 2]) << 8) | static_cast<std::uint8_t>(in_[pos + 3]);
        head = 4;
      } else if (b1 == 127) {
        if (in_.size() - pos < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(in_[pos + 2 + i]);
        head = 10;
      }
      if (in_.size() - pos < head + len) break;
      std::string_view payload(in_.data() + pos + head, len);
      if (payload.starts_with("{\"reset\"")) on_reset();
      else if (payload.starts_with("{\"id\":1,\"result\"")) ++totals_.connected;
      else if (payload.find("\"t\":") != std::string_view::npos) on_payload(payload);
      pos += head + len;
    }
    in_.erase(0, pos);
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

publisher::publisher(net::io_context& ioc, dialect d, tcp::endpoint server, std::vector<std::string> channels,
                     std::size_t count, std::size_t size, std::size_t window, double rate, std::function<void()> done)
    : ioc_(ioc), d_(d), socket_(ioc), server_(server), channels_(std::move(channels)), count_(count), size_(size),
      window_(window), rate_(rate), done_(std::move(done)), buf_(65536), timer_(ioc) {}

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
                       std::to_string(sent_ / channels_.size() + 1) + R"(,"p":")";
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
    else out_ += req;
  }
  if (!writing_ && !out_.empty()) {
    writing_ = true;
    out_inflight_.swap(out_);
    out_.clear();
    net::async_write(socket_, net::buffer(out_inflight_),
                     [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                       self->writing_ = false;
                       self->out_inflight_.clear();
                       if (!ec) self->pump();
                     });
  }
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
