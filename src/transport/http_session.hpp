#pragma once
// One HTTP/1.1 connection: reads requests (keep-alive, size and time limits), routes
// them, and writes responses. /sse hands the socket over to an sse_session, /ws to a
// ws_session; /poll lends the connection to a longpoll_request until its reply is
// written; everything else goes to the API handlers.
//
// With TLS (`tls` given) the connection starts with the handshake, bounded by
// tls_handshake_timeout; plain HTTP sent to the port gets a 400 in clear text.
//
// Client endpoints (/sse, /poll, /ws, /publish, /ticket) first pass the origin policy
// (CORS, preflights) and authentication (token or ticket: possibly a broker round trip,
// after which the request resumes on this connection's thread).
#include <memory>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "metrics/metrics.hpp"
#include "transport/request_head.hpp"
#include "transport/shared_state.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/thread_context.hpp"
#include "transport/tls.hpp"
#include "transport/write_queue.hpp"
#include "transport/ws_handshake.hpp"

namespace herald::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  /// `slot` counts the connection against its address's limit until it closes; `tls`:
  /// the context of a TLS connection (null: plain TCP).
  http_session(tcp::socket socket, thread_context& tc, shared_state& st, ip_slot slot,
               const std::shared_ptr<net::ssl::context>& tls = nullptr);
  ~http_session();

  /// Starts reading the first request (after the TLS handshake).
  void run();

  thread_context& thread() noexcept { return tc_; }
  shared_state& state() noexcept { return st_; }
  tcp::socket& socket() noexcept { return stream().socket(); }

  /// The output queue of the current response; fill it, then send().
  write_queue& out() noexcept { return out_; }
  /// Writes what out() holds as the response to the current request, then reads the
  /// next request (keep-alive) or closes. The write may take as long as it needs while
  /// it progresses: a step that moves no byte within request_timeout ends the
  /// connection as a slow reader (counted).
  void send();
  /// Writes an error response (JSON body of the contract).
  void send_error(const util::api_error& e, bool close = false);
  bool keep_alive() const noexcept { return keep_alive_; }
  void set_keep_alive(bool on) noexcept { keep_alive_ = on; }
  /// Frees the parsed request and the read buffer (a held long poll needs neither).
  void release_request();
  /// CORS headers of the current request's origin (every response to it carries them).
  const header_list& cors_headers() const noexcept { return cors_; }
  /// Writes an API response (status counted, CORS headers added), then goes on as send().
  void send_api_response(api::response r);

  // For a request that reads its own body (POST /api/stream, transport/stream_ingest):
  // the TCP stream (its timer, its socket), the byte stream (plain or TLS, passed to
  // `f`), the read buffer and the parser holding the request's head.
  beast::tcp_stream& stream() noexcept { return tls_ ? tls_->next_layer() : stream_; }
  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(stream_);
  }
  beast::flat_buffer& read_buffer() noexcept { return buffer_; }
  http::request_parser<http::string_body>& parser() noexcept { return *parser_; }

 private:
  void on_handshake(beast::error_code ec);
  void refuse_plain_http();
  /// Gives the connection to a streaming session: the plain socket or the TLS stream.
  void hand_over(tcp::socket& plain, std::unique_ptr<tls_stream>& tls);
  void do_read();
  void on_header(beast::error_code ec, std::size_t bytes);
  void read_body();
  void on_read(beast::error_code ec, std::size_t bytes);
  void on_read_error(beast::error_code ec);
  void handle_request();
  void dispatch(auth::authorizer::auth_result who);
  void start_stream(std::string_view path, boost::urls::params_view params, const auth::identity& who);
  void open_stream(std::string_view path, subscribe_request sub, const auth::identity& who);
  void start_ws(const auth::identity* who, const util::api_error* refusal, std::uint16_t close_code = 0);
  // The backend hooks' decision points (http_hooks.cpp).
  bool stream_hooked() const noexcept;
  void ask_stream_hooks(std::string_view path, subscribe_request sub, auth::identity who);
  void ask_ws_connect_hook(auth::identity who);
  void ask_publish_hook(boost::urls::params_view params, auth::identity who);
  std::string new_client_id() const;
  void call_api(std::string_view path, boost::urls::params_view params, auth::identity who);
  void start_ingest();
  void write_some();
  void on_write_some(beast::error_code ec, std::size_t bytes);
  void on_written();
  void close();

  beast::tcp_stream stream_;         // plain TCP (closed with TLS)
  std::unique_ptr<tls_stream> tls_;  // TLS: over its own TCP stream
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<request_head> head_;  // the checked head of the request in parser_ (views into it)
  thread_context& tc_;
  shared_state& st_;
  write_queue out_;
  // The response being written: what is left of out_'s buffers.
  std::optional<beast::buffers_suffix<std::vector<net::const_buffer>>> writing_;
  ip_slot ip_slot_;
  header_list cors_;
  std::optional<ws_accept> ws_accept_;  // a valid upgrade waiting for authentication
  bool keep_alive_ = true;
  bool head_only_ = false;
  bool first_request_ = true;
  std::string client_id_;                   // the connection's id given to the hooks
  std::optional<std::string> hooked_body_;  // POST /publish with the data the publish hook put
  metrics::gauge_guard gauge_{metrics::gauge::connections_http};
};

}  // namespace herald::transport
