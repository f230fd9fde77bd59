#pragma once
// TLS on the listening port (--tls-cert, --tls-key): the server's certificate and key,
// reloadable, and the stream type a TLS connection reads and writes through.
//
// A connection takes the context current when it is accepted and keeps it: reload()
// (SIGHUP) swaps in a new context for the handshakes that follow, so open connections
// are not touched, and a new certificate or key that does not load leaves the old one
// in place.
//
// The stream is Asio's OpenSSL stream under Beast's flat_stream, which copies a gather
// write of small pieces (an HTTP head, SSE events) into one buffer of up to 16 KiB, so
// that they leave in one TLS record rather than one record each (encryption copies the
// bytes anyway). Plain connections do not go through any of this.
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "transport/socket.hpp"
#include "transport/thread_context.hpp"

namespace herald::transport {

using tls_stream = boost::beast::ssl_stream<tcp_stream>;

class tls_context {
 public:
  /// Loads the certificate chain and the private key (PEM files); throws
  /// std::runtime_error naming the file and OpenSSL's reason when they do not load.
  /// `http2`: ALPN offers h2 before http/1.1.
  tls_context(std::string cert_file, std::string key_file, bool http2 = false);

  /// The context for a new connection.
  std::shared_ptr<net::ssl::context> current() const;

  /// Reads both files again and swaps the new context in; on failure keeps the old one
  /// and returns why (empty: reloaded). Safe from any thread.
  std::string reload();

  const std::string& cert_file() const noexcept { return cert_file_; }

 private:
  std::string cert_file_, key_file_;
  bool http2_;
  mutable std::mutex mutex_;
  std::shared_ptr<net::ssl::context> ctx_;
};

/// Why a TLS handshake ended: counted as herald_tls_handshakes_total{result}.
enum class handshake_result { ok, timeout, plain_http, error };
void count_handshake(handshake_result r) noexcept;
/// True when ALPN chose h2 on this connection.
bool negotiated_h2(tls_stream& s) noexcept;
/// True when a failed handshake met a plain HTTP request instead of a ClientHello.
bool is_plain_http(const boost::system::error_code& ec) noexcept;

}  // namespace herald::transport
