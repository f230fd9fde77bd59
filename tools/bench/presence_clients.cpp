#include "presence_clients.hpp"

#include "http_head.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/asio/write.hpp>
#include <ctime>
#include <iostream>

#include "wire.hpp"

namespace herald::bench {

namespace {

std::string base64url(std::string_view in) {
  static constexpr char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += abc[v >> 18], out += abc[(v >> 12) & 63], out += abc[(v >> 6) & 63], out += abc[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += abc[v >> 18], out += abc[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += abc[v >> 18], out += abc[(v >> 12) & 63], out += abc[(v >> 6) & 63];
  }
  return out;
}

std::string upgrade(const std::string& token, const std::string& channel) {
  return ws_upgrade("/ws", "Authorization: Bearer " + token + "\r\n") +
         ws_client_frame(R"({"id":1,"method":"subscribe","channel":")" + channel + "\"}");
}

void send_once(tcp::socket& socket, std::string bytes) {
  auto b = std::make_shared<std::string>(std::move(bytes));
  net::async_write(socket, net::buffer(*b), [b](const boost::system::error_code&, std::size_t) {});
}

}  // namespace

std::string hs256_token(const std::string& secret, const std::string& sub) {
  const std::string claims =
      R"({"sub":")" + sub + R"(","exp":)" + std::to_string(std::time(nullptr) + 86400) + "}";
  const std::string part = base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(part.data()),
       part.size(), mac, &len);
  return part + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

room_clock::room_clock(std::size_t n)
    : join_sent(new std::atomic<std::int64_t>[n]), leave_sent(new std::atomic<std::int64_t>[n]), users(n) {
  for (std::size_t i = 0; i < n; ++i) join_sent[i].store(0), leave_sent[i].store(0);
}

room_member::room_member(net::io_context& ioc, tcp::endpoint node, std::string channel, std::size_t user,
                         std::string token, room_clock& clock, bool timed, std::vector<char>& discard)
    : socket_(ioc), node_(node), channel_(std::move(channel)), token_(std::move(token)), user_(user), clock_(clock),
      timed_(timed), discard_(discard) {}

void room_member::join() {
  socket_.async_connect(node_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->left_) return;
    if (ec) {
      ++self->clock_.errors;
      return;
    }
    self->socket_.set_option(tcp::no_delay(true));
    if (self->timed_) self->clock_.join_sent[self->user_].store(now_ns(), std::memory_order_release);
    send_once(self->socket_, upgrade(self->token_, self->channel_));
    self->do_read();
  });
}

void room_member::leave() {
  if (left_) return;
  if (!subscribed_) {  // not joined yet (a member picked right after it arrived): once it is
    leave_pending_ = true;
    return;
  }
  left_ = true;
  clock_.leave_sent[user_].store(now_ns(), std::memory_order_release);
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void room_member::heartbeat() {
  if (subscribed_ && !left_) send_once(socket_, ws_client_pong());
}

void room_member::do_read() {
  // Until subscribed into a buffer of its own (its bytes are read); then into the
  // thread's shared one (several reads may complete into it before their handlers run:
  // what they read is not looked at).
  if (!subscribed_ && own_.empty()) own_.resize(4096);
  auto into = subscribed_ ? net::buffer(discard_) : net::buffer(own_);
  socket_.async_read_some(into, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    if (self->left_) return;
    if (ec) {
      ++self->clock_.errors;  // the node closed a member's connection
      return;
    }
    if (!self->subscribed_) {
      // The handshake's reply, then the frames up to the subscribe's answer.
      self->in_.append(self->own_.data(), n);
      const auto end = self->in_.find("\r\n\r\n");
      if (end != std::string::npos) {
        if (!self->in_.starts_with("HTTP/1.1 101")) {
          if (!self->clock_.refused++)
            std::cerr << "herald-bench: a member was refused: " << self->in_.substr(0, 200) << "\n";
          return;
        }
        ws_frames(std::string_view(self->in_).substr(end + 4), [&](std::string_view payload) {
          if (self->subscribed_ || !payload.starts_with("{\"id\":1,")) return;
          self->subscribed_ = true;
          if (payload.find("\"result\"") != std::string_view::npos) {
            ++self->clock_.subscribed;
          } else if (!self->clock_.refused++) {
            std::cerr << "herald-bench: a member's subscribe was refused: " << payload.substr(0, 200) << "\n";
          }
        });
      }
      if (self->subscribed_) self->in_ = std::string(), self->own_ = std::vector<char>();
      if (self->subscribed_ && self->leave_pending_) return self->leave();
    }
    self->do_read();
  });
}

room_observer::room_observer(net::io_context& ioc, tcp::endpoint node, std::string channel, std::string token,
                             const room_clock& clock, observer_totals& totals)
    : socket_(ioc), node_(node), channel_(std::move(channel)), token_(std::move(token)), clock_(clock),
      totals_(totals), buf_(65536) {}

void room_observer::start() {
  socket_.async_connect(node_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      self->totals_.failed = true;
      return;
    }
    self->socket_.set_option(tcp::no_delay(true));
    send_once(self->socket_, upgrade(self->token_, self->channel_));
    self->do_read();
  });
}

void room_observer::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void room_observer::heartbeat() {
  if (headers_done_ && !stopped_) send_once(socket_, ws_client_pong());
}

void room_observer::do_read() {
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                        std::size_t n) {
    if (self->stopped_) return;
    if (ec) {
      self->totals_.failed = true;
      return;
    }
    self->in_.append(self->buf_.data(), n);
    if (!self->headers_done_) {
      const auto end = self->in_.find("\r\n\r\n");
      if (end == std::string::npos) return self->do_read();
      if (!self->in_.starts_with("HTTP/1.1 101")) {
        self->totals_.failed = true;
        return;
      }
      self->headers_done_ = true;
      self->in_.erase(0, end + 4);
    }
    const auto used = ws_frames(self->in_, [&](std::string_view p) { self->on_frame(p); });
    self->in_.erase(0, used);
    self->do_read();
  });
}

void room_observer::on_frame(std::string_view payload) {
  const bool join = payload.starts_with("{\"join\":"), leave = payload.starts_with("{\"leave\":");
  if (!join && !leave) {
    if (payload.starts_with("{\"id\":1,\"result\"")) totals_.subscribed = true;
    else if (payload.starts_with("{\"id\":1,\"error\"")) totals_.failed = true;
    return;
  }
  const auto at = payload.find("\"user\":\"u");
  if (at == std::string_view::npos) {
    ++totals_.foreign;  // another observer
    return;
  }
  const auto user = number_after(payload, "\"user\":\"u", at);
  if (user >= clock_.users) {
    ++totals_.foreign;
    return;
  }
  const auto now = now_ns();
  if (join) {
    ++totals_.joins;
    if (const auto t = clock_.join_sent[user].load(std::memory_order_acquire)) {
      totals_.join_latency.add(now - t);
      ++totals_.timed_joins;
    }
  } else {
    ++totals_.leaves;
    if (const auto t = clock_.leave_sent[user].load(std::memory_order_acquire)) {
      totals_.leave_latency.add(now - t);
      ++totals_.timed_leaves;
    }
  }
}

}  // namespace herald::bench
