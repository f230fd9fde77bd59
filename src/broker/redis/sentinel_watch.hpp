#pragma once
// Where a Sentinel-managed primary is: asks the sentinels in turn
// (`SENTINEL get-master-addr-by-name NAME`) every `poll`, and at once when the broker lost
// its connection to the primary, and reports each new address. The next sentinel is
// asked when one does not answer, answers an error or does not know the name, and when
// the primary it named has not been usable for three polls in a row (no Redis there, or
// one that is not a primary: a sentinel that lies, or one left behind by a failover).
//
// Only where the primary is: whether the server found there really is a primary, and
// whether it may have lost writes, the broker checks itself (INFO replication,
// redis_broker.cpp). All calls and callbacks run on the broker's io_context thread.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/redis/redis_broker_options.hpp"

namespace herald::broker {

class redis_connection;

class sentinel_watch {
 public:
  using moved_fn = std::function<void(const std::string& host, int port)>;
  /// Whether the broker holds a usable connection to the primary (connected, role checked).
  using usable_fn = std::function<bool()>;

  sentinel_watch(boost::asio::io_context& ioc, std::vector<redis_endpoint> sentinels, std::string master,
                 std::chrono::milliseconds poll, moved_fn moved, usable_fn primary_usable);
  ~sentinel_watch();
  sentinel_watch(const sentinel_watch&) = delete;
  sentinel_watch& operator=(const sentinel_watch&) = delete;

  void start();
  /// Asks now (the connection to the primary was lost, or it is not a primary any more).
  void ask_now();

 private:
  void ask();
  void next_sentinel(const char* why);
  void tick();

  boost::asio::io_context& ioc_;
  std::vector<redis_endpoint> sentinels_;
  std::string master_;
  std::chrono::milliseconds poll_;
  moved_fn moved_;
  usable_fn primary_usable_;
  int unusable_ = 0;    // polls in a row with an address but no usable primary there
  std::unique_ptr<redis_connection> conn_;
  boost::asio::steady_timer timer_;
  std::size_t current_ = 0;
  int unanswered_ = 0;  // ticks in a row without an answer from the current sentinel
  bool asking_ = false;
  std::string host_;
  int port_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace herald::broker
