#include <array>
#include <stdexcept>

#include "clients.hpp"
#include "http_head.hpp"

// The HTTP publisher (clients.hpp): herald's /api/publish, the peers' /pub/<ch>, Pushpin's
// /publish/.
namespace herald::bench {

publisher::publisher(net::io_context& ioc, dialect d, tcp::endpoint server, std::vector<std::string> channels,
                     std::size_t count, std::size_t size, std::size_t window, double rate, std::function<void()> done,
                     std::size_t first)
    : ioc_(ioc),
      d_(d),
      socket_(ioc),
      server_(server),
      channels_(std::move(channels)),
      count_(count),
      size_(size),
      window_(window),
      rate_(rate),
      done_(std::move(done)),
      first_(first),
      buf_(65536),
      timer_(ioc) {}

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
    std::string req = "POST " + target +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    ++sent_;
    if (d_ == dialect::pushpin)
      send_once(std::move(req));
    else
      out_.pending += req;
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
  sock->async_read_some(net::buffer(*buf),
                        [self = shared_from_this(), sock, in, buf](const boost::system::error_code& ec, std::size_t n) {
                          in->append(buf->data(), n);
                          const bool complete = whole_response(*in).has_value();
                          if (complete || ec) {
                            boost::system::error_code ignored;
                            sock->close(ignored);
                            return self->on_reply(complete && read_head(*in)->ok());
                          }
                          self->read_once(sock, in);
                        });
}

void publisher::on_reply(bool ok) {
  if (ok)
    ++acked_;
  else
    ++failed_;
  if (acked_ + failed_ >= count_) return done_();
  pump();
}

void publisher::do_read() {
  socket_.async_read_some(net::buffer(buf_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) return;
                            self->in_.append(self->buf_.data(), n);
                            while (auto size = whole_response(self->in_)) {
                              if (read_head(self->in_)->ok())
                                ++self->acked_;
                              else
                                ++self->failed_;
                              self->in_.erase(0, *size);
                            }
                            if (self->acked_ + self->failed_ >= self->count_) return self->done_();
                            self->pump();
                            self->do_read();
                          });
}

}  // namespace herald::bench
