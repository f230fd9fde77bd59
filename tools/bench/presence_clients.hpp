#pragma once
// The clients of the presence scenario (herald-bench --scenario presence): room members
// (one WebSocket each, a token with their user as `sub`, subscribed to the room: their
// subscribe is the user's join, their close its leave) and observers, one per node, that
// time every join and leave they are told of against when it was made.
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

/// An HS256 JWT with claims {"sub":sub,"exp":now + 1 day}.
std::string hs256_token(const std::string& secret, const std::string& sub);

/// What members and observers share across threads: when each user's join and leave was
/// made (indexed by the user's number; 0: not made, or not timed) and the counts.
struct room_clock {
  std::unique_ptr<std::atomic<std::int64_t>[]> join_sent, leave_sent;
  std::size_t users;
  std::atomic<std::uint64_t> subscribed{0}, refused{0}, errors{0};
  explicit room_clock(std::size_t users);
};

class room_member : public std::enable_shared_from_this<room_member> {
 public:
  /// `discard`: a buffer of the member's thread that every member reads into once
  /// subscribed (what the room tells it is not looked at: it only has to be read).
  room_member(net::io_context& ioc, tcp::endpoint node, std::string channel, std::size_t user, std::string token,
              room_clock& clock, bool timed, std::vector<char>& discard);
  void join();
  /// Closes the connection (the user's leave); a member not subscribed yet leaves once it is.
  void leave();
  /// An unsolicited pong, once subscribed (see ws_client_pong).
  void heartbeat();

 private:
  void do_read();

  tcp::socket socket_;
  tcp::endpoint node_;
  std::string channel_, token_, in_;
  std::size_t user_;
  room_clock& clock_;
  bool timed_, subscribed_ = false, left_ = false, leave_pending_ = false;
  std::vector<char>& discard_;
  std::vector<char> own_;
};

/// What one observer saw.
struct observer_totals {
  std::atomic<std::uint64_t> joins{0}, leaves{0}, timed_joins{0}, timed_leaves{0}, foreign{0};
  std::atomic<bool> subscribed{false}, failed{false};
  latency_stats join_latency, leave_latency;  // read once the observer's thread stopped
};

class room_observer : public std::enable_shared_from_this<room_observer> {
 public:
  room_observer(net::io_context& ioc, tcp::endpoint node, std::string channel, std::string token,
                const room_clock& clock, observer_totals& totals);
  void start();
  void stop();
  void heartbeat();

 private:
  void do_read();
  void on_frame(std::string_view payload);

  tcp::socket socket_;
  tcp::endpoint node_;
  std::string channel_, token_, in_;
  const room_clock& clock_;
  observer_totals& totals_;
  std::vector<char> buf_;
  bool headers_done_ = false, stopped_ = false;
};

}  // namespace herald::bench
