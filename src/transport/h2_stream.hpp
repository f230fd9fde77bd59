#pragma once
// One request of an HTTP/2 connection (h2_session.hpp) and its response: assembled from
// nghttp2's header and data callbacks into the same request type HTTP/1.1 parses into,
// routed by http_exchange, answered through a data source that reads the response's
// write queue (one copy, into nghttp2's frames; TLS copies the bytes anyway).
//
// An event stream (/sse) writes through it as its stream_sink; a held poll is told
// through it when the client resets the stream or the connection goes.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "transport/http_exchange.hpp"
#include "transport/stream_sink.hpp"

namespace herald::transport {

class h2_session;
class stream_session;

class h2_stream final : public http_exchange, public stream_sink {
 public:
  h2_stream(std::shared_ptr<h2_session> conn, std::int32_t id);
  ~h2_stream();

  // The request, as nghttp2 decodes it (h2_session's callbacks).
  /// One header field; false when the block is past 4 times --max-header-size (the
  /// connection ends: nobody sends that much by mistake).
  bool add_header(std::string_view name, std::string_view value);
  /// The header block is complete: HTTP/1.1-only endpoints are refused at once.
  void headers_done();
  /// Request body bytes; past --max-body-size the request is answered 413 at once.
  void add_body(std::string_view data);
  /// The request is complete (END_STREAM): it is routed.
  void request_done();
  /// nghttp2 closed the stream (response sent, reset by either side, connection gone).
  void closed();
  /// The response ended with END_STREAM: a request still being sent is cut short
  /// (RST_STREAM NO_ERROR, RFC 9113 8.1).
  void response_sent();

  /// nghttp2's data source: copies what is queued into `buf`.
  long read(std::uint8_t* buf, std::size_t length, std::uint32_t* flags);

  /// Time of the last progress (request bytes, response bytes taken): the connection's
  /// tick resets a stream stalled past --request-timeout.
  std::int64_t last_progress_ms() const noexcept { return progress_ms_; }
  /// The request is still arriving, or a response has bytes nghttp2 has not taken.
  bool waiting() const noexcept { return !complete_ || (bufs_ && !sse_); }
  /// The request is still arriving.
  bool receiving() const noexcept { return !complete_; }

  // http_exchange
  void response_head(int status, std::string_view content_type, long long content_length,
                     const header_list& headers) override;
  void send() override;
  void release_request() override { req_ = {}; }
  void watch_close(std::shared_ptr<longpoll_request> p) override { poll_ = std::move(p); }

  // stream_sink
  void sink_head(int status, std::string_view content_type, long long content_length,
                 const header_list& headers) override {
    response_head(status, content_type, content_length, headers);
  }
  void sink_write(const std::vector<boost::asio::const_buffer>& bufs, write_done done) override;
  void sink_close(bool graceful) override;

 private:
  boost::beast::http::request<boost::beast::http::string_body>& request() noexcept override { return req_; }
  std::optional<boost::asio::ip::address> peer_address() override;
  void open_sse(subscribe_request sub, const auth::identity& who) override;
  void start_ws(const auth::identity*, const util::api_error*, std::uint16_t) override;

  std::shared_ptr<h2_stream> self() { return std::static_pointer_cast<h2_stream>(shared_from_this()); }
  /// Submits the response head (with a data source unless it has no body) or, once
  /// submitted, tells nghttp2 that data is ready.
  void submit();
  void reset(std::uint32_t error_code);

  std::shared_ptr<h2_session> conn_;
  std::int32_t id_;
  boost::beast::http::request<boost::beast::http::string_body> req_;
  std::size_t header_bytes_ = 0;
  bool header_too_large_ = false;
  bool body_too_large_ = false;
  bool complete_ = false;
  bool answered_early_ = false;  // answered before the request ended
  bool closed_ = false;
  // The response.
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> response_fields_;  // the response head, lower-case names
  bool submitted_ = false;
  bool deferred_ = false;  // nghttp2 waits for resume_data
  bool end_ = false;       // the body ends once bufs_ is taken
  const std::vector<boost::asio::const_buffer>* bufs_ = nullptr;
  std::size_t buf_index_ = 0, buf_offset_ = 0, taken_ = 0;
  write_done done_;
  std::int64_t progress_ms_ = 0;
  std::shared_ptr<longpoll_request> poll_;  // a held poll
  std::shared_ptr<stream_session> sse_;     // an event stream
};

}  // namespace herald::transport
