#pragma once
// Accepts connections on one event-loop thread. Every thread has its own listener on
// the same address (SO_REUSEPORT), so the kernel spreads connections over the threads
// and a connection stays on the thread that accepted it.
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "transport/shared_state.hpp"
#include "transport/socket.hpp"
#include "transport/thread_context.hpp"

namespace herald::transport {

class listener : public std::enable_shared_from_this<listener> {
 public:
  /// Binds and listens; throws boost::system::system_error naming the address on failure.
  listener(thread_context& tc, shared_state& st, const net::ip::tcp::endpoint& endpoint);
  void run();
  void stop();
  net::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void do_accept();
  void refuse(tcp_socket socket);

  thread_context& tc_;
  shared_state& st_;
  tcp_acceptor acceptor_;
  net::steady_timer backoff_;
};

}  // namespace herald::transport
