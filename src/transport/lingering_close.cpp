#include "transport/lingering_close.hpp"

#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "metrics/metrics.hpp"

namespace herald::transport {

namespace {

// Lingering sockets of this thread: bounded, so a flood of connections herald refuses
// cannot hold descriptors for linger_time each. Past the bound, sockets close at once.
thread_local std::size_t lingering = 0;
constexpr std::size_t max_lingering = 1024;

class lingerer : public std::enable_shared_from_this<lingerer> {
 public:
  lingerer(tcp_socket socket, thread_context& tc) : socket_(std::move(socket)), tc_(tc), timer_(tc.ioc()) {
    ++lingering;
  }
  ~lingerer() { --lingering; }

  void start() {
    boost::system::error_code ec;
    socket_.shutdown(tcp_socket::shutdown_send, ec);
    if (ec) return close();
    timer_.expires_after(linger_time);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (!e) self->close();
    });
    read();
  }

 private:
  void read() {
    socket_.async_wait(tcp_socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || !self->socket_.is_open()) return self->close();
      boost::system::error_code rec;
      const std::size_t n = self->socket_.read_some(net::buffer(self->tc_.scratch()), rec);
      if (rec == net::error::would_block) return self->read();
      if (rec || n == 0) return self->close();  // the peer's end of stream (or its reset)
      metrics::add(metrics::counter::bytes_in, n);
      self->discarded_ += n;
      if (self->discarded_ > linger_bytes) return self->close();
      self->read();
    });
  }

  void close() {
    if (!socket_.is_open()) return;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  tcp_socket socket_;
  thread_context& tc_;
  net::steady_timer timer_;
  std::size_t discarded_ = 0;
};

}  // namespace

void lingering_close(tcp_socket socket, thread_context& tc) {
  if (!socket.is_open()) return;
  boost::system::error_code ec;
  if (lingering >= max_lingering) {
    socket.close(ec);
    return;
  }
  socket.non_blocking(true, ec);
  std::make_shared<lingerer>(std::move(socket), tc)->start();
}

}  // namespace herald::transport
