#pragma once
// The composition root: builds the event-loop threads, the hub, the broker, the API and
// the listeners from a config, and runs them. The only place that picks implementations.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"
#include "server/listen_lock.hpp"

namespace herald::broker {
class memory_broker;
class redis_broker;
}  // namespace herald::broker
namespace herald::core {
class hub;
class broker;
class presence_registry;
struct context;
class stream_registry;
class user_registry;
}  // namespace herald::core
namespace herald::api {
class handlers;
}
namespace herald::transport {
class ip_counter;
class tls_context;
class thread_context;
class listener;
class hooks;
struct shared_state;
}  // namespace herald::transport

namespace herald::server {

class server {
 public:
  explicit server(config::config cfg);
  ~server();

  /// Binds the listeners (throws std::runtime_error naming the address on failure,
  /// also when another herald listens on it).
  void start();
  /// Runs the event loops on this thread and cfg.threads-1 others until stop().
  void run();
  /// Graceful drain: stops accepting, tells every client to go (WebSocket close 1001,
  /// end of SSE streams, held polls answered) spread over the drain window, then ends
  /// the loops. A second call stops at once. Safe from any thread.
  void stop();
  boost::asio::ip::tcp::endpoint endpoint() const;

 private:
  void schedule_sweep();
  void check_drained();
  void wait_signal();
  void wait_reload();
  void halt(const char* why);
  void log_start() const;
  void register_process_gauges();
  std::size_t streams() const;
  std::atomic<int> stops_{0};
  std::int64_t drain_deadline_ms_ = 0;
  std::int64_t drain_start_ms_ = 0;
  std::size_t drain_streams_ = 0;  // streaming connections when the drain began
  bool halted_ = false;            // thread 0 only

  config::config cfg_;
  std::vector<std::unique_ptr<transport::thread_context>> threads_;
  std::unique_ptr<core::hub> hub_;
  std::unique_ptr<core::broker> broker_;
  std::unique_ptr<core::presence_registry> presence_;  // after the broker it signals through
  broker::memory_broker* memory_ = nullptr;            // the broker, when it is the memory one
  broker::redis_broker* redis_ = nullptr;              // the broker, when it is Redis
  std::unique_ptr<core::stream_registry> streams_;
  std::unique_ptr<core::user_registry> users_;  // live connections by user (the users API)
  std::unique_ptr<core::context> core_;
  std::unique_ptr<auth::authorizer> auth_;
  std::unique_ptr<api::handlers> api_;
  std::unique_ptr<transport::ip_counter> connections_per_ip_, polls_per_ip_;
  std::unique_ptr<transport::tls_context> tls_;
  std::unique_ptr<transport::shared_state> shared_;
  std::unique_ptr<transport::hooks> hooks_;  // the backend hooks, when any is configured
  std::vector<std::shared_ptr<transport::listener>> listeners_;
  listen_lock lock_;  // one herald per address (see listen_lock.hpp)
  struct timers;
  std::unique_ptr<timers> timers_;
};

}  // namespace herald::server
