#pragma once
// One event-loop thread's HTTP client for one backend hook: POSTs a hook's JSON to the
// backend over a small pool of keep-alive HTTP/1.1 connections (Boost.Beast) and hands
// back the reply's body (docs/http-api.md, "Hooks").
//
// Contract:
// - call() and its callback run on the thread of the io_context given (one client per
//   event-loop thread and hook: nothing is shared between threads, nothing is locked).
// - The callback runs exactly once, never inline (it is posted), at the latest `timeout`
//   after the call, whatever the backend does: answers, stalls, resets, is not there.
// - Bounds: at most pool_size connections; at most max_pending calls waiting for one
//   (past it a call fails at once, `overloaded`); a reply body of at most
//   max_reply_bytes (past it: `bad_reply`).
// - A kept-alive connection the backend closed while idle is found out when reused:
//   a call whose request met such a closed connection (no reply byte read) is sent once
//   more on a new connection, within the same deadline.
// - Destroy it before its io_context, with the loop stopped.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "transport/options.hpp"

namespace herald::transport {

namespace net = boost::asio;

enum class hook_outcome : std::uint8_t { ok, timeout, unavailable, bad_reply, overloaded };

struct hook_response {
  hook_outcome outcome = hook_outcome::ok;
  std::string body;    // ok: the reply body (a 2xx reply)
  std::string detail;  // otherwise: what happened, for the error message
};

class hook_client {
 public:
  hook_client(net::io_context& ioc, hook_endpoint endpoint, const hook_options& limits);
  ~hook_client();
  hook_client(const hook_client&) = delete;
  hook_client& operator=(const hook_client&) = delete;

  /// POSTs `body` (JSON) to the hook's URL; `done` gets the reply (see the contract).
  void call(std::string body, std::function<void(hook_response)> done);

  /// Open connections and waiting calls (tests, metrics).
  std::size_t open_connections() const noexcept { return open_; }
  std::size_t pending() const noexcept { return pending_.size(); }

 private:
  struct pending_call;
  struct connection;
  using call_ptr = std::shared_ptr<pending_call>;
  using conn_ptr = std::shared_ptr<connection>;

  void assign(const call_ptr& c);
  void open_and_send(const call_ptr& c);
  void send(const conn_ptr& conn, const call_ptr& c);
  void on_io_error(const conn_ptr& conn, const call_ptr& c, const boost::system::error_code& ec, bool got_reply);
  void on_reply(const conn_ptr& conn, const call_ptr& c);
  void release(const conn_ptr& conn);
  void drop(const conn_ptr& conn);
  void on_timeout(const call_ptr& c);
  void finish(const call_ptr& c, hook_outcome o, std::string text);

  net::io_context& ioc_;
  hook_endpoint endpoint_;
  const hook_options& limits_;
  net::ip::tcp::resolver resolver_;
  std::vector<conn_ptr> idle_;
  std::deque<call_ptr> pending_;
  std::size_t open_ = 0;  // connections open or opening
};

}  // namespace herald::transport
