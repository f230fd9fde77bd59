#include "clients.hpp"

#include "http_head.hpp"

// The chat participant (clients.hpp): one WebSocket that publishes and receives.
namespace herald::bench {

chat_client::chat_client(net::io_context& ioc, tcp::endpoint server, std::string channel, std::size_t index,
                         std::size_t senders, std::size_t count, std::size_t size, std::size_t window, double rate,
                         std::int64_t offset_ns, delivery_totals& totals, const tcp::endpoint* source)
    : ioc_(ioc),
      socket_(ioc),
      server_(server),
      channel_(std::move(channel)),
      index_(index),
      senders_(senders),
      count_(count),
      size_(size),
      window_(std::max<std::size_t>(1, window)),
      rate_(rate),
      offset_ns_(offset_ns),
      totals_(totals),
      buf_(65536),
      seen_(senders * (count + 1)),
      highest_(senders),
      timer_(ioc) {
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
    self->send(ws_upgrade() + ws_client_frame(R"({"id":1,"method":"subscribe","channel":")" + self->channel_ + "\"}"));
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
      const auto due =
          t0_ + offset_ns_ + (rate_ > 0 ? static_cast<std::int64_t>(static_cast<double>(sent_) * 1e9 / rate_) : 0);
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
  socket_.async_read_some(net::buffer(buf_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
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
    auto head = read_head(in_);
    if (!head) return;
    headers_done_ = true;
    if (head->status != 101) {
      ++totals_.errors;
      return stop();
    }
    in_.erase(0, head->size);
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
    if (n < highest_[s])
      ++totals_.reordered;  // after a later message of the same sender
    else
      highest_[s] = n;
    return;
  }
  if (payload.starts_with("{\"id\":")) {
    const auto id = number_after(payload, "{\"id\":");
    const bool ok =
        payload.find("\"result\"") != std::string_view::npos && payload.find("\"error\"") == std::string_view::npos;
    if (id == 1) {  // the subscribe
      if (ok) {
        ++totals_.connected;
      } else {
        ++totals_.errors;
        stop();
      }
      return;
    }
    if (ok)
      ++acked_, ++totals_.published;
    else
      ++failed_, ++totals_.publish_failed;
    return pump();
  }
  if (payload.starts_with("{\"reset\"")) ++totals_.resets;
}

}  // namespace herald::bench
