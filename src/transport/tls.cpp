#include "transport/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "metrics/metrics.hpp"

// Asio's OpenSSL layer, compiled here once (separate compilation, like util/asio_impl.cpp).
#include <boost/asio/ssl/impl/src.hpp>

namespace herald::transport {

namespace {

std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// ALPN: h2 first when HTTP/2 is on, then http/1.1. A client that offers neither goes on
// without ALPN (HTTP/1.1).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void* arg) {
  static constexpr unsigned char h2_first[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static constexpr unsigned char h1_only[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  const bool http2 = arg != nullptr;
  unsigned char* chosen = nullptr;
  // SSL_select_next_proto prefers the server's order.
  if (SSL_select_next_proto(&chosen, outlen, http2 ? h2_first : h1_only, http2 ? sizeof h2_first : sizeof h1_only, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<net::ssl::context> load(const std::string& cert, const std::string& key, bool http2) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  auto* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle connections give their record buffers back (most of a push server's are idle).
  SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS);
  static int on;  // any non-null argument: HTTP/2 offered
  SSL_CTX_set_alpn_select_cb(h, select_alpn, http2 ? &on : nullptr);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(h, cert.c_str()) != 1)
    throw std::runtime_error("cannot load the TLS certificate " + cert + ": " + openssl_reason());
  if (SSL_CTX_use_PrivateKey_file(h, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      throw std::runtime_error("the TLS key " + key + " does not match the certificate " + cert + ": " +
                               openssl_reason());
    throw std::runtime_error("cannot load the TLS key " + key + ": " + openssl_reason());
  }
  if (SSL_CTX_check_private_key(h) != 1)
    throw std::runtime_error("the TLS key " + key + " does not match the certificate " + cert + ": " +
                             openssl_reason());
  return ctx;
}

}  // namespace

tls_context::tls_context(std::string cert_file, std::string key_file, bool http2)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      http2_(http2),
      ctx_(load(cert_file_, key_file_, http2_)) {}

std::shared_ptr<net::ssl::context> tls_context::current() const {
  std::lock_guard lock(mutex_);
  return ctx_;
}

std::string tls_context::reload() {
  std::shared_ptr<net::ssl::context> fresh;
  try {
    fresh = load(cert_file_, key_file_, http2_);
  } catch (const std::exception& e) {
    return e.what();
  }
  std::lock_guard lock(mutex_);
  ctx_.swap(fresh);  // the old context dies with the last connection that uses it
  return {};
}

void count_handshake(handshake_result r) noexcept {
  switch (r) {
    case handshake_result::ok: return metrics::add(metrics::counter::tls_handshakes_ok);
    case handshake_result::timeout: return metrics::add(metrics::counter::tls_handshakes_timeout);
    case handshake_result::plain_http: return metrics::add(metrics::counter::tls_handshakes_plain_http);
    case handshake_result::error: return metrics::add(metrics::counter::tls_handshakes_error);
  }
}

bool negotiated_h2(tls_stream& s) noexcept {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(s.native_handle(), &p, &n);
  return n == 2 && p[0] == 'h' && p[1] == '2';
}

bool is_plain_http(const boost::system::error_code& ec) noexcept {
  return ec.category() == net::error::get_ssl_category() && ERR_GET_REASON(ec.value()) == SSL_R_HTTP_REQUEST;
}

}  // namespace herald::transport
