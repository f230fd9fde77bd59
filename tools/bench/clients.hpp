#pragma once
// Load clients over raw sockets: subscribers for each transport and an HTTP publisher.
// Deliberately minimal parsers (the server is the system under test, not this tool):
// a message is found by its "offset" and the publisher's timestamp "t" in the payload.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stats.hpp"

namespace herald::bench {

namespace net = boost::asio;
using tcp = net::ip::tcp;

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
  std::uint64_t duplicated = 0;  // offsets seen twice or going back
  std::uint64_t resets = 0;      // explicit "history could not cover the gap" signals
  std::uint64_t bytes_in = 0;    // bytes read by subscribers (framing and headers counted)
  std::uint64_t bytes_out = 0;   // bytes sent by subscribers (requests, handshakes)
  std::uint64_t connected = 0;   // subscriptions acknowledged / streams open
  std::uint64_t errors = 0;
  latency_stats latency;
};

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  subscriber(net::io_context& ioc, transport t, dialect d, tcp::endpoint server, std::string channel,
             delivery_totals& totals, const tcp::endpoint* source);
  void start();
  void stop();

 private:
  void on_connect();
  void send(std::string bytes);
  void do_read();
  void parse();
  void on_payload(std::string_view json);
  void on_reset();
  void refused();
  void send_poll();

  net::io_context& ioc_;
  transport t_;
  dialect d_;
  tcp::socket socket_;
  tcp::endpoint server_;
  std::string channel_;
  delivery_totals& totals_;
  std::string in_;
  std::vector<char> buf_;
  std::string cursor_;  // herald: the poll cursor; peer: If-Modified-Since + If-None-Match
  bool headers_done_ = false;
  bool connected_once_ = false;
  std::size_t body_left_ = 0;
  std::uint64_t next_offset_ = 0;
  bool stopped_ = false;
};

/// Publishes `count` messages of `size` bytes to `channels` (round robin) over one
/// keep-alive connection, `window` requests in flight, at most `rate` per second (0: no limit).
class publisher : public std::enable_shared_from_this<publisher> {
 public:
  publisher(net::io_context& ioc, dialect d, tcp::endpoint server, std::vector<std::string> channels,
            std::size_t count, std::size_t size, std::size_t window, double rate, std::function<void()> done);
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
  std::size_t sent_ = 0, acked_ = 0, failed_ = 0;
  std::int64_t start_ns_ = 0;
  std::string in_;
  std::vector<char> buf_;
  net::steady_timer timer_;
  bool writing_ = false;
  std::string out_, out_inflight_;
};

}  // namespace herald::bench
