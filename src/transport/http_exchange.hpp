#pragma once
// One HTTP request and its response, whatever carries it: an HTTP/1.1 connection
// (http_session) or one stream of an HTTP/2 connection (h2_stream). The route of a
// request is decided here, once, for both (router.cpp, http_hooks.cpp):
//
//   route() -> origin policy (CORS, preflights) -> authentication (token or ticket:
//   possibly a broker round trip, resumed on this thread) -> dispatch(): the API
//   handlers, the publish hook, or a subscription (subscribe hooks, then /sse or /poll).
//
// What differs between the carriers is below the line: how a response head is written
// (text in the write queue, or a HEADERS frame), how an event stream or a held poll
// learns that its client went away, and what only HTTP/1.1 does (the WebSocket upgrade).
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "api/api_handlers.hpp"
#include "transport/http_response.hpp"
#include "transport/request_head.hpp"
#include "transport/shared_state.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/thread_context.hpp"
#include "transport/write_queue.hpp"
#include "transport/ws_handshake.hpp"

namespace herald::transport {

class longpoll_request;

class http_exchange : public std::enable_shared_from_this<http_exchange> {
 public:
  virtual ~http_exchange() = default;
  http_exchange(const http_exchange&) = delete;
  http_exchange& operator=(const http_exchange&) = delete;

  thread_context& thread() noexcept { return tc_; }
  shared_state& state() noexcept { return st_; }

  /// The output queue of the current response: response_head(), then the body, then send().
  write_queue& out() noexcept { return out_; }
  /// Queues the response head (HTTP/1.1: its text in out(); HTTP/2: the stream's HEADERS,
  /// sent with the body). `content_length` < 0: none (a stream that ends with its carrier).
  /// CORS headers are the caller's to add (cors_headers()).
  virtual void response_head(int status, std::string_view content_type, long long content_length,
                             const header_list& headers) = 0;
  /// Writes the response queued in out(); afterwards the carrier reads its next request
  /// (HTTP/1.1 keep-alive) or closes.
  virtual void send() = 0;
  /// Writes an API response (status counted, CORS headers added), then goes on as send().
  void send_api_response(api::response r);
  /// Writes an error response (JSON body of the contract); `close`: HTTP/1.1 closes after it.
  void send_error(const util::api_error& e, bool close = false);

  bool keep_alive() const noexcept { return keep_alive_; }
  void set_keep_alive(bool on) noexcept { keep_alive_ = on; }
  /// CORS headers of the current request's origin (every response to it carries them).
  const header_list& cors_headers() const noexcept { return cors_; }

  /// Frees the parsed request (a held long poll needs none of it).
  virtual void release_request() = 0;
  /// While a poll is held: tells `p` (client_gone()) when the client goes away.
  virtual void watch_close(std::shared_ptr<longpoll_request> p) = 0;

 protected:
  http_exchange(thread_context& tc, shared_state& st) : tc_(tc), st_(st) {}

  /// The request being answered and its checked head (views into it).
  virtual boost::beast::http::request<boost::beast::http::string_body>& request() noexcept = 0;
  const request_head& head() const noexcept { return *head_; }
  /// The client's address (polls per address); nullopt when the client is gone already.
  virtual std::optional<boost::asio::ip::address> peer_address() = 0;
  /// Hands the request over to an event stream.
  virtual void open_sse(subscribe_request sub, const auth::identity& who) = 0;
  /// Opens the WebSocket of a valid upgrade (ws_accept_), or refuses it after opening.
  virtual void start_ws(const auth::identity* who, const util::api_error* refusal, std::uint16_t close_code = 0) = 0;

  /// Routes request() (its body read, if any), whose checked head is in head_.
  void route();
  /// Forgets the previous request's routing state (before reading the next one).
  void reset_request() noexcept;

  std::shared_ptr<http_exchange> self() { return shared_from_this(); }

  thread_context& tc_;
  shared_state& st_;
  write_queue out_;
  std::optional<request_head> head_;  // the checked head of request() (views into it)
  header_list cors_;
  std::optional<ws_accept> ws_accept_;  // a valid upgrade waiting for authentication
  bool keep_alive_ = true;
  bool head_only_ = false;
  std::string client_id_;                   // the connection's id given to the hooks
  std::optional<std::string> hooked_body_;  // POST /publish with the data the publish hook put

 private:
  void dispatch(auth::authorizer::auth_result who);
  void start_stream(std::string_view path, boost::urls::params_view params, const auth::identity& who);
  void open_stream(std::string_view path, subscribe_request sub, const auth::identity& who);
  void open_poll(subscribe_request sub, const auth::identity& who);
  void call_api(std::string_view path, boost::urls::params_view params, auth::identity who);
  // The backend hooks' decision points (http_hooks.cpp).
  bool stream_hooked() const noexcept;
  void ask_stream_hooks(std::string_view path, subscribe_request sub, auth::identity who);
  void ask_ws_connect_hook(auth::identity who);
  void ask_publish_hook(boost::urls::params_view params, auth::identity who);
  std::string new_client_id() const;
};

}  // namespace herald::transport
