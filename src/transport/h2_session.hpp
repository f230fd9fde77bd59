#pragma once
// One HTTP/2 connection (RFC 9113), framed by nghttp2: over TLS when ALPN chose "h2", or
// over plain TCP when a client opens with the HTTP/2 preface (prior knowledge). Each
// request is an h2_stream, routed like an HTTP/1.1 request (http_exchange.hpp): the API,
// static files, /publish, /ticket, /stop, and /sse and /poll, whose event streams and held
// polls share the connection. The WebSocket upgrade and POST /api/stream, which read their
// own body as it comes, stay on HTTP/1.1: their streams are reset with HTTP_1_1_REQUIRED
// (curl and browsers then retry over HTTP/1.1).
//
// Writes: the connection is a flushable: what its streams queue during a pass of the loop
// is framed at the end of it and leaves in one write (at most one in flight).
//
// Bounds, beside nghttp2's own checks of the protocol (a violation ends the connection
// with GOAWAY PROTOCOL_ERROR):
//  - 100 streams open at once (SETTINGS_MAX_CONCURRENT_STREAMS; more are refused);
//  - a request's header block within --max-header-size (431), its body within
//    --max-body-size (413); a header block 4 times the limit ends the connection;
//  - a request must arrive whole within --request-timeout (then RST_STREAM CANCEL);
//  - a write to the socket, and a response stream's output, that moves nothing within
//    --request-timeout: the connection (or the stream) is cut as a slow reader;
//  - more than 200 streams reset by the client, or 2000 opened, within 10 s (the
//    "rapid reset" attack, CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM;
//  - idle (no stream) past --keepalive-timeout, or no first request within
//    --request-timeout: GOAWAY NO_ERROR;
//  - the connection counts once against --max-connections-per-ip, each held poll against
//    --max-polls-per-ip.
// Counted: herald_h2_streams_total, herald_h2_stream_resets_total{by},
// herald_h2_goaways_total{reason}, herald_connections{transport="h2"}.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "metrics/metrics.hpp"
#include "transport/ip_counter.hpp"
#include "transport/shared_state.hpp"
#include "transport/socket.hpp"
#include "transport/thread_context.hpp"
#include "transport/tls.hpp"

struct nghttp2_session;

namespace herald::transport {

class h2_stream;

class h2_session final : public std::enable_shared_from_this<h2_session>, public tickable, public flushable {
 public:
  /// `tls`: the connection's TLS stream (ALPN h2); null: plain TCP on `plain`.
  h2_session(std::unique_ptr<tls_stream> tls, tcp_stream plain, thread_context& tc, shared_state& st, ip_slot slot);
  ~h2_session();
  h2_session(const h2_session&) = delete;
  h2_session& operator=(const h2_session&) = delete;

  /// Starts the connection: `already_read` holds the bytes read before it was known to
  /// be HTTP/2 (the client's preface, on a plain connection).
  void start(std::string_view already_read = {});

  thread_context& thread() noexcept { return tc_; }
  shared_state& state() noexcept { return st_; }
  nghttp2_session* native() noexcept { return session_; }
  bool closed() const noexcept { return closed_; }
  /// A stream has frames to send: framed and written at the end of this pass.
  void want_write();
  /// Resets a stream (counted as reset by the server).
  void reset_stream(std::int32_t id, std::uint32_t error_code);
  std::optional<boost::asio::ip::address> peer_address();

  // nghttp2's callbacks (h2_session.cpp), forwarded here.
  int on_begin_headers(std::int32_t id);
  int on_header(std::int32_t id, std::string_view name, std::string_view value);
  int on_frame_recv(std::int32_t id, std::uint8_t type, std::uint8_t flags);
  int on_data(std::int32_t id, std::string_view data);
  int on_frame_sent(std::int32_t id, std::uint8_t type, std::uint8_t flags);
  int on_stream_close(std::int32_t id, std::uint32_t error_code);

 private:
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  /// Feeds bytes read to nghttp2; false when the connection ends.
  bool feed(const char* data, std::size_t n);
  void flush() override;
  void on_written(const boost::system::error_code& ec, std::size_t n);
  void on_tick(std::int64_t now_ms) override;
  void drain() override;
  /// Ends the connection with GOAWAY `error_code`, counted under `reason`.
  void go_away(std::uint32_t error_code, metrics::counter reason);
  void close();
  h2_stream* find(std::int32_t id);

  tcp_stream plain_;                 // plain TCP (closed with TLS)
  std::unique_ptr<tls_stream> tls_;  // TLS
  thread_context& tc_;
  shared_state& st_;
  ip_slot ip_slot_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::shared_ptr<h2_stream>> streams_;
  std::unique_ptr<char[]> read_buf_;
  std::string write_buf_;
  bool writing_ = false;
  bool closed_ = false;
  bool going_away_ = false;                         // GOAWAY queued: close once it is written and no stream is left
  bool terminating_ = false;                        // ... with an error: close once it is written
  std::vector<std::shared_ptr<h2_stream>> ending_;  // streams ended by the error, until the close
  bool had_stream_ = false;
  std::int64_t write_started_ms_ = 0;
  std::int64_t idle_since_ms_ = 0;
  // Rapid-reset and stream-flood accounting over a 10 s window.
  std::int64_t window_start_ms_ = 0;
  std::uint32_t resets_in_window_ = 0, opened_in_window_ = 0;
  metrics::gauge_guard http_gauge_{metrics::gauge::connections_http};
  metrics::gauge_guard gauge_{metrics::gauge::connections_h2};
};

}  // namespace herald::transport
