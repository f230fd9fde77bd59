#pragma once
// The clients of the stream scenario (herald-bench --scenario stream): a producer that
// holds one chunked `POST /api/stream` open and writes an answer's tokens into it as
// they are due, and readers (SSE or WebSocket) that follow the answer from the first
// token, drop and resume from their cursor, and check the text byte for byte.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clients.hpp"
#include "stats.hpp"

namespace herald::bench {

/// One answer: its text, where each token ends in it, and when each token was written
/// (stored by the producer's thread, read by the readers' threads).
struct stream_plan {
  std::string channel;
  std::string text;
  std::vector<std::size_t> token_end;  // token i is text[token_end[i-1], token_end[i])
  std::unique_ptr<std::atomic<std::int64_t>[]> sent_ns;

  stream_plan(std::string channel, std::size_t index, std::size_t tokens);
  std::size_t tokens() const { return token_end.size(); }
  std::string_view token(std::size_t i) const {
    const auto from = i ? token_end[i - 1] : 0;
    return std::string_view(text).substr(from, token_end[i] - from);
  }
};

/// What the producers and readers of one thread add up to.
struct stream_totals {
  std::uint64_t readers_exact = 0, readers_done = 0, mismatched = 0, duplicates = 0, gaps = 0, resets = 0,
                errors = 0, delivered = 0, resumes = 0, not_completed = 0, producers_completed = 0,
                producer_errors = 0, end_offsets = 0, readers_connected = 0, producers_connected = 0, unfinished = 0;
  std::int64_t last_write_ns = 0;
  latency_stats token_latency, steady_latency, first_token, resume;  // steady: readers that never drop
};

class stream_producer : public std::enable_shared_from_this<stream_producer> {
 public:
  stream_producer(net::io_context& ioc, tcp::endpoint server, stream_plan& plan, stream_totals& totals,
                  std::int64_t phase_ns);
  void start();
  /// Writes every token due by `now` (token i is due at t0 + phase + i * interval) and,
  /// after the last one, the end of the body.
  void pump(std::int64_t now, std::int64_t t0, std::int64_t interval);
  bool replied() const { return replied_; }

 private:
  void write(std::string bytes);
  void do_read();

  tcp::socket socket_;
  tcp::endpoint server_;
  stream_plan& plan_;
  stream_totals& totals_;
  std::int64_t phase_;
  std::size_t next_ = 0;
  bool finished_ = false, replied_ = false, connected_ = false;
  std::string in_;
  std::vector<char> buf_;
  write_pump out_;
};

class stream_reader : public std::enable_shared_from_this<stream_reader> {
 public:
  stream_reader(net::io_context& ioc, tcp::endpoint server, transport t, const stream_plan& plan,
                stream_totals& totals, bool drops);
  void start();
  /// Closes the connection and opens a new one at once, resuming from the cursor.
  void drop();
  /// WebSocket: an unsolicited pong (see ws_client_pong), for runs longer than herald's
  /// ping interval.
  void heartbeat();
  bool done() const { return done_; }
  transport kind() const { return t_; }
  /// Gives up (the run's deadline): counted as an error unless done.
  void abandon();

 private:
  void connect();
  void do_read();
  void parse();
  void on_event(std::string_view json, bool end);
  void finish();
  void fail();

  net::io_context& ioc_;
  tcp::endpoint server_;
  transport t_;
  const stream_plan& plan_;
  stream_totals& totals_;
  tcp::socket socket_;
  std::string in_, text_, cursor_, event_id_, event_name_, data_;
  std::vector<char> buf_;
  bool drops_, headers_done_ = false, done_ = false, counted_connect_ = false, clean_ = true;
  unsigned generation_ = 0;
  std::uint64_t last_offset_ = 0;
  std::size_t next_token_ = 0;
  std::int64_t dropped_at_ = 0;  // a resume in progress: when the connection was dropped
};

}  // namespace herald::bench
