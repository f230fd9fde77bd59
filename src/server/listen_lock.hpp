#pragma once
// One herald per listening address. The listeners use SO_REUSEPORT so that the threads
// of one process share the port; the kernel would as gladly let a second herald bind
// it too, and then split clients between two nodes whose memory brokers know nothing
// of each other (issue 11, finding 7). This lock stops the second process at start-up.
//
// The lock is an abstract-namespace Unix socket, `@herald-listen:IP:PORT`, bound once
// per process. Binding it again fails with EADDRINUSE while the holder lives, and the
// kernel releases it when the holder exits, however it exits: no lock file to go stale,
// no path to choose. (Abstract names are per network namespace, like the ports.)
//
// It is keyed by the exact address herald listens on. Overlapping addresses (0.0.0.0 and
// 127.0.0.1 on one port, [::] and 0.0.0.0) bind side by side with SO_REUSEPORT as well,
// so before binding, probe() also tries a plain bind (no SO_REUSEPORT) of the address,
// which fails when any listener, herald or not, already covers it.
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace herald::server {

class listen_lock {
 public:
  listen_lock() = default;
  ~listen_lock() { release(); }
  listen_lock(const listen_lock&) = delete;
  listen_lock& operator=(const listen_lock&) = delete;

  /// "127.0.0.1:8080", "[::1]:8080".
  static std::string name(const boost::asio::ip::tcp::endpoint& ep);

  /// Throws std::runtime_error ("IP:PORT is already in use ...") when something already
  /// listens on an address that covers `ep`. A port 0 is not probed.
  static void probe(const boost::asio::ip::tcp::endpoint& ep);

  /// Takes the lock for `ep` (its port known, not 0); throws std::runtime_error
  /// "another herald is already listening on IP:PORT" when another process holds it.
  void acquire(const boost::asio::ip::tcp::endpoint& ep);
  /// Lets another herald start on the address (when this one stops accepting).
  void release() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace herald::server
