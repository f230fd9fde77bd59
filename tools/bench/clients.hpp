#pragma once
// Load clients over raw sockets: subscribers for each transport (clients.cpp, their
// parsers in subscriber_parse.cpp), chat participants (chat_client.cpp) and an HTTP
// publisher (publisher.cpp).
// Deliberately minimal parsers (the server is the system under test, not this tool):
// a message is found by its "offset" and the publisher's timestamp "t" in the payload.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stats.hpp"

namespace herald::bench {

namespace net = boost::asio;
using tcp = net::ip::tcp;

/// Outgoing bytes of one connection: one write in flight, what queues meanwhile leaves
/// in the next. The owner keeps itself alive through `then` (which captures it).
struct write_pump {
  std::string pending, inflight;
  bool writing = false;

  /// Writes what is pending unless a write is in flight; `then(ec)` runs after it.
  template <class Then>
  void start(tcp::socket& socket, Then then);
};

template <class Then>
void write_pump::start(tcp::socket& socket, Then then) {
  if (writing || pending.empty()) return;
  writing = true;
  inflight.swap(pending);
  pending.clear();
  net::async_write(socket, net::buffer(inflight),
                   [this, then = std::move(then)](const boost::system::error_code& ec, std::size_t) mutable {
                     writing = false;
                     inflight.clear();
                     then(ec);
                   });
}


enum class transport { ws, sse, poll };
/// How a server names its endpoints: herald's API, or the peers' /sub/<ch> and /pub/<ch>
/// (Nchan, node ws), or Pushpin's: /sub/<ch> through its GRIP origin, and JSON items
/// posted to its publish endpoint (/publish/, one connection per request: it closes them).
enum class dialect { herald, peer, pushpin };
transport parse_transport(const std::string& s);
const char* name(transport t);

/// What all subscribers of a run add up to.
struct delivery_totals {
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;        // offsets skipped
  std::uint64_t duplicated = 0;  // offsets seen twice or going back (chat: seen twice)
  std::uint64_t resets = 0;      // explicit "history could not cover the gap" signals
  std::uint64_t bytes_in = 0;    // bytes read by subscribers (framing and headers counted)
  std::uint64_t bytes_out = 0;   // bytes sent by subscribers (requests, handshakes)
  std::uint64_t connected = 0;   // subscriptions acknowledged / streams open
  std::uint64_t errors = 0;
  std::uint64_t reordered = 0;       // chat: a sender's message after a later one of the same sender
  std::uint64_t caught_up = 0;       // resume: subscribers that reached their target offset again
  std::uint64_t published = 0;       // chat: publishes answered with a result
  std::uint64_t publish_failed = 0;  // chat: publishes answered with an error (e.g. rate_limited)
  std::int64_t last_delivery_ns = 0;   // now_ns() of the last delivery
  std::int64_t last_caught_up_ns = 0;  // now_ns() of the last catch-up (resume)
  latency_stats latency;
};

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  subscriber(net::io_context& ioc, transport t, dialect d, tcp::endpoint server, std::string channel,
             delivery_totals& totals, const tcp::endpoint* source);
  void start();
  void stop();
  /// Resume: remember the position (WebSocket push and subscribe cursors, SSE ids; long
  /// polls always keep theirs) so that reconnect() can hand it back.
  void keep_cursor() { keep_cursor_ = true; }
  /// herald only: subscribe in the raw format (docs/protocol.md, "Raw formats"): the data
  /// as published, WebSocket binary frames, SSE `data:` without a space, long-poll lines.
  void raw_format() { raw_ = true; }
  /// Resume: open a new connection and subscribe again from the kept cursor (WebSocket
  /// `since`, SSE `Last-Event-ID`, long-poll `since`). Counts in `caught_up` once the
  /// message numbered `target` (or a reset) arrives; messages up to `target` are replayed
  /// ones and give no latency sample.
  void reconnect(std::uint64_t target);

 private:
  void on_connect();
  void send(std::string bytes);
  void do_read();
  void parse();  // subscriber_parse.cpp: one per transport
  void parse_ws();
  void parse_sse();
  void parse_poll();
  void on_payload(std::string_view json);
  void on_reset();
  void refused();
  void send_poll();
  void open_socket();
  void caught_up();

  net::io_context& ioc_;
  transport t_;
  dialect d_;
  tcp::socket socket_;
  tcp::endpoint server_;
  std::string channel_;
  delivery_totals& totals_;
  std::string in_;
  std::vector<char> buf_;
  std::string cursor_;  // herald: the position (poll cursor, or kept for a resume); peer: If-Modified-Since + If-None-Match
  std::string event_id_;  // SSE: the id of the event being read
  bool headers_done_ = false;
  bool connected_once_ = false;
  std::size_t body_left_ = 0;
  std::uint64_t next_offset_ = 0;
  bool stopped_ = false;
  bool keep_cursor_ = false;
  bool raw_ = false;
  bool has_source_ = false;
  tcp::endpoint source_;
  unsigned generation_ = 0;          // a reconnect ignores the old connection's completions
  std::uint64_t catch_up_target_ = 0;  // resume: waiting for this message number (0: not waiting)
  std::uint64_t replayed_upto_ = 0;    // resume: messages up to here are replays (no latency sample)
};

/// A chat participant: one WebSocket subscribed to `channel`, publishing its own `count`
/// messages over it (`{"id":k,"method":"publish",...}`) at `rate` per second (0: as fast
/// as `window` unanswered publishes allow), its first one `offset_ns` after the common
/// start; it receives every participant's messages (its own included) and checks them
/// per sender: duplicates, order, and (at the end, against what was published) losses.
class chat_client : public std::enable_shared_from_this<chat_client> {
 public:
  chat_client(net::io_context& ioc, tcp::endpoint server, std::string channel, std::size_t index,
              std::size_t senders, std::size_t count, std::size_t size, std::size_t window, double rate,
              std::int64_t offset_ns, delivery_totals& totals, const tcp::endpoint* source);
  void start();
  void start_publishing(std::int64_t t0_ns);
  void stop();

 private:
  void do_read();
  void parse();
  void on_frame(std::string_view payload);
  void pump();
  void send(std::string bytes);

  net::io_context& ioc_;
  tcp::socket socket_;
  tcp::endpoint server_;
  std::string channel_;
  std::size_t index_, senders_, count_, size_, window_;
  double rate_;
  std::int64_t offset_ns_, t0_ = 0;
  delivery_totals& totals_;
  std::string in_;
  std::vector<char> buf_;
  bool headers_done_ = false;
  bool stopped_ = false;
  bool publishing_ = false;
  std::size_t sent_ = 0, acked_ = 0, failed_ = 0;
  std::vector<bool> seen_;              // (sender, number): received
  std::vector<std::uint64_t> highest_;  // per sender: the highest number received
  net::steady_timer timer_;
  bool timer_armed_ = false;
  write_pump out_;
};

/// Publishes `count` messages of `size` bytes to `channels` (round robin) over one
/// keep-alive connection, `window` requests in flight, at most `rate` per second (0: no limit).
class publisher : public std::enable_shared_from_this<publisher> {
 public:
  /// Messages are numbered from `first` ("n" in the payload) in each channel.
  publisher(net::io_context& ioc, dialect d, tcp::endpoint server, std::vector<std::string> channels,
            std::size_t count, std::size_t size, std::size_t window, double rate, std::function<void()> done,
            std::size_t first = 1);
  void start();
  std::size_t acknowledged() const { return acked_; }
  std::size_t failed() const { return failed_; }

 private:
  void pump();
  void do_read();
  void send_once(std::string request);
  void read_once(std::shared_ptr<tcp::socket> sock, std::shared_ptr<std::string> in);
  void on_reply(bool ok);

  net::io_context& ioc_;
  dialect d_;
  tcp::socket socket_;
  tcp::endpoint server_;
  std::vector<std::string> channels_;
  std::size_t count_, size_, window_;
  double rate_;
  std::function<void()> done_;
  std::size_t first_;
  std::size_t sent_ = 0, acked_ = 0, failed_ = 0;
  std::int64_t start_ns_ = 0;
  std::string in_;
  std::vector<char> buf_;
  net::steady_timer timer_;
  write_pump out_;
};

}  // namespace herald::bench
