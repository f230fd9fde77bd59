#pragma once
// One HTTP/1.1 connection: reads requests (keep-alive, size and time limits), has them
// routed (http_exchange.hpp), and writes responses. /sse hands the socket over to an
// sse_session, /ws to a ws_session, an HTTP/2 connection (ALPN h2, or the preface) to an
// h2_session; /poll lends the connection to a longpoll_request until its reply is
// written; POST /api/stream to a stream_ingest, which reads its body.
//
// With TLS (`tls` given) the connection starts with the handshake, bounded by
// tls_handshake_timeout; plain HTTP sent to the port gets a 400 in clear text.
#include <memory>
#include <optional>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "metrics/metrics.hpp"
#include "transport/http_exchange.hpp"
#include "transport/request_head.hpp"
#include "transport/shared_state.hpp"
#include "transport/socket.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/thread_context.hpp"
#include "transport/tls.hpp"
#include "transport/write_queue.hpp"
#include "transport/ws_handshake.hpp"

namespace herald::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class http_session final : public http_exchange {
 public:
  /// `slot` counts the connection against its address's limit until it closes; `peer`:
  /// the client's address, as the listener read it (none: the peer had already gone);
  /// `tls`: the context of a TLS connection (null: plain TCP).
  http_session(tcp_socket socket, thread_context& tc, shared_state& st, ip_slot slot,
               std::optional<net::ip::address> peer, const std::shared_ptr<net::ssl::context>& tls = nullptr);
  ~http_session();

  /// Starts reading the first request (after the TLS handshake).
  void run();

  tcp_socket& socket() noexcept {
    if (tls_) return tls_->next_layer().socket();
    auto* s = std::get_if<tcp_stream>(&conn_);
    return s ? s->socket() : std::get<tcp_socket>(conn_);
  }

  /// Writes what out() holds as the response to the current request, then reads the
  /// next request (keep-alive) or closes. The write may take as long as it needs while
  /// it progresses: a step that moves no byte within request_timeout ends the
  /// connection as a slow reader (counted).
  void send() override;
  void response_head(int status, std::string_view content_type, long long content_length,
                     const header_list& headers) override;
  /// Frees the parsed request and the read buffer (a held long poll needs neither). On
  /// plain TCP the connection keeps only its socket while held: the Beast stream, its
  /// three timers with it (about 550 B), is rebuilt around it for the reply (stream()).
  void release_request() override;
  void watch_close(std::shared_ptr<longpoll_request> p) override;

  // For a request that reads its own body (POST /api/stream, transport/stream_ingest):
  // the TCP stream (its timer, its socket), the byte stream (plain or TLS, passed to
  // `f`), the read buffer and the parser holding the request's head.
  tcp_stream& stream() noexcept;
  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(stream());
  }
  beast::flat_buffer& read_buffer() noexcept { return buffer_; }
  http::request_parser<http::string_body>& parser() noexcept { return *parser_; }

 private:
  http::request<http::string_body>& request() noexcept override { return parser_->get(); }
  std::optional<net::ip::address> peer_address() override;
  void open_sse(subscribe_request sub, const auth::identity& who) override;
  void start_ws(const auth::identity* who, const util::api_error* refusal, std::uint16_t close_code = 0) override;

  std::shared_ptr<http_session> self() { return std::static_pointer_cast<http_session>(shared_from_this()); }
  void on_handshake(beast::error_code ec);
  void refuse_plain_http();
  /// Gives the connection to HTTP/2 (ALPN h2, or the preface on plain TCP).
  void start_h2(std::string_view already_read);
  /// Gives the connection to a streaming session: the plain socket or the TLS stream.
  void hand_over(tcp_socket& plain, std::unique_ptr<tls_stream>& tls);
  void do_read();
  void on_header(beast::error_code ec, std::size_t bytes);
  void read_body();
  void on_read(beast::error_code ec, std::size_t bytes);
  void on_read_error(beast::error_code ec);
  void start_ingest();
  void write_some();
  void on_write_some(beast::error_code ec, std::size_t bytes);
  void on_written();
  void close();
  tcp_socket take_socket();

  // Plain TCP: the Beast stream (its deadlines), or only the socket while a poll is held
  // (watch_close). With TLS, a closed socket: the TLS stream has its own TCP stream.
  std::variant<tcp_stream, tcp_socket> conn_;
  std::unique_ptr<tls_stream> tls_;  // TLS: over its own TCP stream
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The response being written: what is left of out_'s buffers.
  std::optional<beast::buffers_suffix<buffer_view>> writing_;
  ip_slot ip_slot_;
  std::optional<net::ip::address> peer_;  // read once, at accept: not a syscall per poll
  bool first_request_ = true;
  metrics::gauge_guard gauge_{metrics::gauge::connections_http};
};

}  // namespace herald::transport
