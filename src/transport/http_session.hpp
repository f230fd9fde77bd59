#pragma once
// One HTTP/1.1 connection: reads requests (keep-alive, size and time limits), routes
// them, and writes responses. /sse hands the socket over to an sse_session; /poll
// lends the connection to a longpoll_request until its reply is written; everything
// else goes to the API handlers.
#include <memory>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "metrics/metrics.hpp"
#include "transport/shared_state.hpp"
#include "transport/thread_context.hpp"
#include "transport/write_queue.hpp"

namespace herald::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(tcp::socket socket, thread_context& tc, shared_state& st);
  ~http_session();

  /// Starts reading the first request.
  void run();

  thread_context& thread() noexcept { return tc_; }
  shared_state& state() noexcept { return st_; }
  tcp::socket& socket() noexcept { return stream_.socket(); }

  /// The output queue of the current response; fill it, then send().
  write_queue& out() noexcept { return out_; }
  /// Writes what out() holds as the response to the current request, then reads the
  /// next request (keep-alive) or closes.
  void send();
  /// Writes an error response (JSON body of the contract).
  void send_error(const util::api_error& e, bool close = false);
  bool keep_alive() const noexcept { return keep_alive_; }
  void set_keep_alive(bool on) noexcept { keep_alive_ = on; }
  /// Frees the parsed request and the read buffer (a held long poll needs neither).
  void release_request();

 private:
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void handle_request();
  void send_api_response(api::response r);
  void on_write(beast::error_code ec, std::size_t bytes);
  void close();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  thread_context& tc_;
  shared_state& st_;
  write_queue out_;
  bool keep_alive_ = true;
  bool head_only_ = false;
  bool first_request_ = true;
  metrics::gauge_guard gauge_{metrics::gauge::connections_http};
};

}  // namespace herald::transport
