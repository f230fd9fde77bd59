#include "server/listen_lock.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace herald::server {

namespace net = boost::asio;

std::string listen_lock::name(const net::ip::tcp::endpoint& ep) {
  const auto a = ep.address();
  const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return host + ":" + std::to_string(ep.port());
}

void listen_lock::probe(const net::ip::tcp::endpoint& ep) {
  if (ep.port() == 0) return;
  net::io_context ioc;
  net::ip::tcp::acceptor a(ioc);
  boost::system::error_code ec;
  a.open(ep.protocol(), ec);
  if (ec) return;  // the real bind reports it
  // SO_REUSEADDR: connections of an earlier run in TIME_WAIT are no conflict; a
  // listening socket still is. No SO_REUSEPORT: a listener sharing the port is one.
  a.set_option(net::socket_base::reuse_address(true), ec);
  a.bind(ep, ec);
  if (ec == net::error::address_in_use)
    throw std::runtime_error(name(ep) + " is already in use (another herald, or another server, listens on it)");
  a.close(ec);
}

void listen_lock::acquire(const net::ip::tcp::endpoint& ep) {
  release();
  const std::string key = "herald-listen:" + name(ep);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract namespace: a leading NUL, then the name (not NUL-terminated).
  const std::size_t n = std::min(key.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path + 1, key.data(), n);
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot create the listen lock for " + name(ep) + ": " + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EADDRINUSE) throw std::runtime_error("another herald is already listening on " + name(ep));
    throw std::runtime_error("cannot take the listen lock for " + name(ep) + ": " + std::strerror(err));
  }
  fd_ = fd;
}

void listen_lock::release() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace herald::server
