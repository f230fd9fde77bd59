#pragma once
// One hiredis asynchronous connection driven by an Asio io_context, with reconnection.
//
// hiredis (Debian's 0.14) speaks the protocol and pipelines commands; this adapter gives
// it readiness events through a posix::stream_descriptor watching its socket, and
// reconnects with exponential back-off (100 ms doubling to 5 s) when the connection
// fails or drops. All calls and callbacks run on the io_context's thread.
//
// A command issued while disconnected fails at once (callback with nullptr): callers
// turn that into a 503, so a publish never waits on a dead Redis.
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

struct redisAsyncContext;
struct redisReply;

namespace herald::broker {

namespace net = boost::asio;

class redis_connection {
 public:
  /// Called with the reply (nullptr when the connection failed before it came).
  using reply_fn = std::function<void(redisReply*)>;

  redis_connection(net::io_context& ioc, std::string host, int port, std::string name);
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Connects (and reconnects after failures) until stop(). With a `command_timeout`,
  /// a command left unanswered that long drops the connection: its callers get their
  /// failure (503) and readiness goes false, rather than waiting on a stalled Redis.
  void start(std::chrono::milliseconds command_timeout = std::chrono::milliseconds(0));
  void stop();
  bool connected() const noexcept { return connected_; }

  /// Points the connection at another address (a Sentinel-managed primary moved): a
  /// connection to the old one is dropped and the new one is tried at once. A connection
  /// built with an empty host waits for this before its first attempt.
  void retarget(const std::string& host, int port);
  /// Drops the connection (callers of what is in flight get nullptr); the back-off reconnects.
  void reconnect();
  std::string address() const { return host_ + ":" + std::to_string(port_); }

  /// Called (on the io thread) each time the connection is (re)established / lost.
  std::function<void()> on_up;
  std::function<void()> on_down;

  /// Sends a command; `fn` gets its reply.
  bool command(const std::vector<std::string>& args, reply_fn fn);

  /// SUBSCRIBE / UNSUBSCRIBE. `fn` is called for the confirmation and every message of
  /// `channel`. The callback state is owned here, one per channel, reused by every
  /// SUBSCRIBE of it, and freed only once hiredis holds no pointer to it: hiredis 0.14.1
  /// keeps a channel's callback from its first SUBSCRIBE until an "unsubscribe" reply
  /// arrives with no SUBSCRIBE of the channel left unconfirmed (or the connection is
  /// freed); freeing it earlier left a dangling pointer that crashed a node under
  /// subscription churn. So the state goes when the channel is unsubscribed and that
  /// reply came (or the connection was lost), and the map does not grow with every
  /// channel ever watched.
  bool subscribe(const std::string& channel, reply_fn fn);
  bool unsubscribe(const std::string& channel);
  /// Channels with callback state (watched, or unsubscribed and not yet confirmed).
  /// Safe from any thread.
  std::size_t subscription_entries() const noexcept { return entries_.load(std::memory_order_relaxed); }

 private:
  struct pending;
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void ev_add_read(void* self);
  static void ev_del_read(void* self);
  static void ev_add_write(void* self);
  static void ev_del_write(void* self);
  static void ev_cleanup(void* self);

  void connect();
  void schedule_reconnect();
  void wait_read();
  void wait_write();
  void lost();
  void watchdog();
  void forget(const std::string& channel);

  net::io_context& ioc_;
  std::string host_;
  int port_;
  std::string name_;
  redisAsyncContext* ac_ = nullptr;
  std::unique_ptr<net::posix::stream_descriptor> fd_;
  net::steady_timer retry_timer_;
  net::steady_timer watchdog_timer_;
  std::chrono::milliseconds command_timeout_{0};
  std::deque<std::chrono::steady_clock::time_point> sent_;  // commands awaiting replies, oldest first
  std::chrono::milliseconds backoff_{100};
  bool reading_ = false, writing_ = false, read_armed_ = false, write_armed_ = false;
  bool connected_ = false;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unordered_map<std::string, std::unique_ptr<pending>> subscriptions_;
  std::atomic<std::size_t> entries_{0};  // subscriptions_.size(), for other threads
};

}  // namespace herald::broker
