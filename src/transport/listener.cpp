#include "transport/listener.hpp"

#include <sys/socket.h>

#include <boost/asio/socket_base.hpp>

#include "metrics/metrics.hpp"
#include "transport/client_events.hpp"
#include "transport/http_session.hpp"
#include "transport/lingering_close.hpp"
#include "transport/tls.hpp"

namespace herald::transport {

listener::listener(thread_context& tc, shared_state& st, const net::ip::tcp::endpoint& endpoint)
    : tc_(tc), st_(st), acceptor_(tc.ioc()), backoff_(tc.ioc()) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  acceptor_.set_option(reuse_port(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(4096);
}

void listener::run() { do_accept(); }

void listener::stop() {
  boost::system::error_code ignored;
  backoff_.cancel();
  acceptor_.close(ignored);
}

void listener::do_accept() {
  acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp_socket socket) {
    if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: pause briefly rather than spin or stop.
      metrics::add(metrics::counter::accept_errors);
      self->backoff_.expires_after(std::chrono::milliseconds(50));
      self->backoff_.async_wait([self](const boost::system::error_code& e) {
        if (!e) self->do_accept();
      });
      return;
    }
    ip_slot slot;
    std::optional<net::ip::address> peer;
    if (auto remote = socket.remote_endpoint(ec); !ec) peer = remote.address();
    if (peer && !self->st_.connections_per_ip.acquire(*peer, slot)) {
      self->refuse(std::move(socket));
      return self->do_accept();
    }
    socket.set_option(net::ip::tcp::no_delay(true), ec);
    std::shared_ptr<net::ssl::context> tls;
    if (self->st_.tls) tls = self->st_.tls->current();  // the certificate of this moment
    std::make_shared<http_session>(std::move(socket), self->tc_, self->st_, std::move(slot), peer, tls)->run();
    self->do_accept();
  });
}

void listener::refuse(tcp_socket socket) {
  // Over the per-address limit: one short 429, written without waiting, then closed.
  limit_refused(metrics::counter::limit_connections_per_ip, "connections_per_ip");
  static const std::string reply = [] {
    std::string body =
        R"({"error":{"code":"too_many_connections","message":"too many connections from this address"}})";
    return "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }();
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  // On a TLS port the client expects a handshake, not HTTP in clear: it is only closed
  // (a handshake per refusal would cost what the limit is there to spare).
  if (!st_.tls) socket.write_some(net::buffer(reply), ec);
  lingering_close(std::move(socket), tc_);
}

}  // namespace herald::transport
