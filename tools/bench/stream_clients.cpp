#include "stream_clients.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <iostream>

#include "http_head.hpp"

namespace herald::bench {

namespace {

// Token i of an answer: mostly ASCII words, with characters that JSON escapes and
// multi-byte UTF-8 (2 and 4 bytes: a surrogate pair in \u form) among them, so that
// "byte for byte" covers the text encodings on the way.
std::string make_token(std::size_t i) {
  const auto n = std::to_string(i);
  if (i % 17 == 8) return "\xF0\x9F\x99\x82" + n + " ";  // U+1F642
  if (i % 13 == 6) return "l" + n + "\n";
  if (i % 11 == 5) return "\"q" + n + "\\ ";
  if (i % 7 == 3) return "\xC3\xA9" + n + " ";  // é
  return "t" + n + " ";
}

void send_once(tcp::socket& socket, std::string bytes) {
  auto b = std::make_shared<std::string>(std::move(bytes));
  net::async_write(socket, net::buffer(*b), [b](const boost::system::error_code&, std::size_t) {});
}

}  // namespace

stream_plan::stream_plan(std::string ch, std::size_t index, std::size_t tokens)
    : channel(std::move(ch)), sent_ns(new std::atomic<std::int64_t>[tokens]) {
  token_end.reserve(tokens);
  for (std::size_t i = 0; i < tokens; ++i) {
    text += make_token(i + index % 3);  // streams differ a little
    token_end.push_back(text.size());
    sent_ns[i].store(0, std::memory_order_relaxed);
  }
}

stream_producer::stream_producer(net::io_context& ioc, tcp::endpoint server, stream_plan& plan, stream_totals& totals,
                                 std::int64_t phase_ns)
    : socket_(ioc), server_(server), plan_(plan), totals_(totals), phase_(phase_ns), buf_(4096) {}

void stream_producer::start() {
  socket_.async_connect(server_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      ++self->totals_.producer_errors;
      self->replied_ = true;
      return;
    }
    self->socket_.set_option(tcp::no_delay(true));
    self->connected_ = true;
    ++self->totals_.producers_connected;
    self->write("POST /api/stream?channel=" + self->plan_.channel +
                " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    self->do_read();
  });
}

void stream_producer::write(std::string bytes) {
  out_.pending += bytes;
  out_.start(socket_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->write({});
  });
}

void stream_producer::pump(std::int64_t now, std::int64_t t0, std::int64_t interval) {
  if (!connected_ || finished_ || replied_) return;
  std::string chunks;
  while (next_ < plan_.tokens() && t0 + phase_ + static_cast<std::int64_t>(next_) * interval <= now) {
    const auto tok = plan_.token(next_);
    char head[24];
    std::snprintf(head, sizeof head, "%zx\r\n", tok.size());
    chunks += head;
    chunks += tok;
    chunks += "\r\n";
    plan_.sent_ns[next_].store(now_ns(), std::memory_order_release);
    ++next_;
  }
  if (next_ == plan_.tokens()) {
    chunks += "0\r\n\r\n";
    finished_ = true;
    totals_.last_write_ns = std::max(totals_.last_write_ns, now_ns());
  }
  if (!chunks.empty()) write(std::move(chunks));
}

void stream_producer::do_read() {
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                        std::size_t n) {
    if (self->replied_) return;
    self->in_.append(self->buf_.data(), n);
    const bool whole = whole_response(self->in_).has_value();
    if (!whole && !ec) return self->do_read();
    self->replied_ = true;
    const auto head = read_head(self->in_);
    if (whole && head->status == 200 && self->in_.find("\"state\":\"completed\"") != std::string::npos) {
      ++self->totals_.producers_completed;
      self->totals_.end_offsets += number_after(self->in_, "\"offset\":", head->size);
    } else {
      if (!self->totals_.producer_errors)
        std::cerr << "herald-bench: a producer of " << self->plan_.channel << " got: "
                  << (self->in_.empty() ? ec.message() : self->in_.substr(0, 300)) << "\n";
      ++self->totals_.producer_errors;
    }
    boost::system::error_code ignored;
    self->socket_.close(ignored);
  });
}

stream_reader::stream_reader(net::io_context& ioc, tcp::endpoint server, transport t, const stream_plan& plan,
                             stream_totals& totals, bool drops)
    : ioc_(ioc), server_(server), t_(t), plan_(plan), totals_(totals), socket_(ioc), buf_(16384), drops_(drops) {}

void stream_reader::start() { connect(); }

void stream_reader::connect() {
  ++generation_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  socket_ = tcp::socket(ioc_);
  headers_done_ = false;
  in_.clear(), event_id_.clear(), event_name_.clear(), data_.clear();
  socket_.async_connect(server_, [self = shared_from_this(), g = generation_](const boost::system::error_code& ec) {
    if (g != self->generation_ || self->done_) return;
    if (ec) return self->fail();
    self->socket_.set_option(tcp::no_delay(true));
    const auto& ch = self->plan_.channel;
    if (self->t_ == transport::sse) {
      std::string req = "GET /sse?channel=" + ch + (self->cursor_.empty() ? "&since=earliest" : "") +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
      if (!self->cursor_.empty()) req += "Last-Event-ID: " + self->cursor_ + "\r\n";
      send_once(self->socket_, req + "\r\n");
    } else {
      const std::string since = self->cursor_.empty() ? "earliest" : self->cursor_;
      send_once(self->socket_, ws_upgrade() + ws_client_frame(R"({"id":1,"method":"subscribe","channel":")" + ch +
                                                              R"(","since":")" + since + "\"}"));
    }
    self->do_read();
  });
}

void stream_reader::drop() {
  if (done_ || dropped_at_) return;  // a drop during a resume waits for the next one
  dropped_at_ = now_ns();
  connect();
}

void stream_reader::heartbeat() {
  if (t_ == transport::ws && headers_done_ && !done_) send_once(socket_, ws_client_pong());
}

void stream_reader::abandon() {
  if (done_) return;
  ++totals_.unfinished;
  clean_ = false;
  finish();
}

void stream_reader::do_read() {
  socket_.async_read_some(net::buffer(buf_), [self = shared_from_this(), g = generation_](
                                                 const boost::system::error_code& ec, std::size_t n) {
    if (g != self->generation_ || self->done_) return;
    if (ec) return self->fail();  // the server closed a connection before the end
    self->in_.append(self->buf_.data(), n);
    self->parse();
    if (g == self->generation_ && !self->done_) self->do_read();
  });
}

void stream_reader::parse() {
  if (!headers_done_) {
    const auto head = read_head(in_);
    if (!head) return;
    headers_done_ = true;
    if (t_ == transport::sse && head->status == 204) return finish();  // resumed at the end
    if (head->status != (t_ == transport::sse ? 200 : 101)) return fail();
    if (t_ == transport::sse && !counted_connect_) counted_connect_ = true, ++totals_.readers_connected;
    in_.erase(0, head->size);
  }
  if (t_ == transport::ws) {
    const auto gen = generation_;
    const auto used = ws_frames(in_, [&](std::string_view payload) {
      if (done_ || gen != generation_) return;
      if (payload.starts_with("{\"push\"")) {
        auto c = string_after_last(payload, "\"cursor\":\"");
        if (!c.empty()) cursor_.assign(c);
        on_event(payload, payload.find("\"event\":\"end\"") != std::string_view::npos);
      } else if (payload.starts_with("{\"id\":1,\"result\"")) {
        if (!counted_connect_) counted_connect_ = true, ++totals_.readers_connected;
        if (payload.find("\"ended\":true") != std::string_view::npos) finish();  // resumed at the end
      } else if (payload.starts_with("{\"id\":1,\"error\"") || payload.starts_with("{\"reset\"")) {
        if (payload.starts_with("{\"reset\"")) ++totals_.resets;
        fail();
      }
    });
    if (!done_ && gen == generation_) in_.erase(0, used);
    return;
  }
  std::size_t pos = 0;
  for (;;) {
    const auto nl = in_.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string_view line(in_.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.starts_with("data: ")) data_.assign(line.substr(6));
    else if (line.starts_with("id: ")) event_id_.assign(line.substr(4));
    else if (line.starts_with("event: ")) event_name_.assign(line.substr(7));
    else if (line.empty() && !data_.empty()) {
      if (!event_id_.empty()) cursor_ = event_id_;
      if (event_name_ == "reset") {
        ++totals_.resets;
        return fail();
      }
      const std::string data = std::move(data_);
      const bool end = event_name_ == "end";
      event_id_.clear(), event_name_.clear(), data_.clear();
      on_event(data, end);
      if (done_) return;
    }
  }
  in_.erase(0, pos);
}

void stream_reader::on_event(std::string_view json, bool end) {
  const auto now = now_ns();
  if (dropped_at_) {
    totals_.resume.add(now - dropped_at_);
    ++totals_.resumes;
    dropped_at_ = 0;
  }
  ++totals_.delivered;
  const auto offset = number_after(json, "\"offset\":");
  if (offset <= last_offset_) {
    ++totals_.duplicates;
    clean_ = false;
    return;
  }
  if (offset != last_offset_ + 1) ++totals_.gaps, clean_ = false;
  last_offset_ = offset;
  if (end) {
    if (json.find("\"state\":\"completed\"") == std::string_view::npos) ++totals_.not_completed, clean_ = false;
    return finish();
  }
  const auto d = json.find("\"data\":");
  if (d == std::string_view::npos || !json_unquote(json.substr(d + 7), text_)) {
    ++totals_.errors;  // not a text delta
    clean_ = false;
    return;
  }
  while (next_token_ < plan_.tokens() && plan_.token_end[next_token_] <= text_.size()) {
    const auto sent = plan_.sent_ns[next_token_].load(std::memory_order_acquire);
    if (sent) {
      totals_.token_latency.add(now - sent);
      if (!drops_) totals_.steady_latency.add(now - sent);
      if (next_token_ == 0) totals_.first_token.add(now - sent);
    }
    ++next_token_;
  }
}

void stream_reader::finish() {
  if (done_) return;
  done_ = true;
  dropped_at_ = 0;
  ++totals_.readers_done;
  if (text_ == plan_.text && clean_) ++totals_.readers_exact;
  else if (text_ != plan_.text) ++totals_.mismatched;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void stream_reader::fail() {
  if (done_) return;
  ++totals_.errors;
  clean_ = false;
  finish();
}

}  // namespace herald::bench
