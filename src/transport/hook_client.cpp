#include "transport/hook_client.hpp"

#include <algorithm>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace herald::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct hook_client::pending_call {
  std::string body;
  std::function<void(hook_response)> done;
  net::steady_timer timer;
  conn_ptr conn;          // the connection carrying it, while in flight
  bool finished = false;  // done has been posted
  bool resent = false;    // already sent again after a stale keep-alive connection
  pending_call(net::io_context& ioc, std::string b, std::function<void(hook_response)> d)
      : body(std::move(b)), done(std::move(d)), timer(ioc) {}
};

struct hook_client::connection {
  tcp::socket socket;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  bool reused = false;  // has carried a call before: may have been closed by the backend
  explicit connection(net::io_context& ioc) : socket(ioc) {}
};

hook_client::hook_client(net::io_context& ioc, hook_endpoint endpoint, const hook_options& limits)
    : ioc_(ioc), endpoint_(std::move(endpoint)), limits_(limits), resolver_(ioc) {}

hook_client::~hook_client() {
  for (auto& c : pending_) c->timer.cancel();
  for (auto& conn : idle_) {
    boost::system::error_code ec;
    conn->socket.close(ec);
  }
}

void hook_client::call(std::string body, std::function<void(hook_response)> done) {
  auto c = std::make_shared<pending_call>(ioc_, std::move(body), std::move(done));
  c->timer.expires_after(limits_.timeout);
  c->timer.async_wait([this, c](const boost::system::error_code& ec) {
    if (!ec && !c->finished) on_timeout(c);
  });
  if (idle_.empty() && open_ >= limits_.pool_size && pending_.size() >= limits_.max_pending)
    return finish(c, hook_outcome::overloaded,
                  std::to_string(pending_.size()) + " calls already wait for a connection to the backend");
  assign(c);
}

void hook_client::assign(const call_ptr& c) {
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return send(conn, c);
  }
  if (open_ < limits_.pool_size) return open_and_send(c);
  pending_.push_back(c);
}

void hook_client::open_and_send(const call_ptr& c) {
  ++open_;
  auto conn = std::make_shared<connection>(ioc_);
  c->conn = conn;
  // The name is resolved per new connection (rare with keep-alive), so a backend whose
  // address changes is followed.
  resolver_.async_resolve(
      endpoint_.host, endpoint_.port,
      [this, conn, c](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
        if (c->finished) return drop(conn);
        if (ec) {
          drop(conn);
          return finish(c, hook_outcome::unavailable, "cannot resolve " + endpoint_.host + ": " + ec.message());
        }
        net::async_connect(conn->socket, results,
                           [this, conn, c](const boost::system::error_code& ec, const tcp::endpoint&) {
                             if (c->finished) return drop(conn);
                             if (ec) {
                               drop(conn);
                               return finish(c, hook_outcome::unavailable, "cannot connect: " + ec.message());
                             }
                             boost::system::error_code ignored;
                             conn->socket.set_option(tcp::no_delay(true), ignored);
                             send(conn, c);
                           });
      });
}

void hook_client::send(const conn_ptr& conn, const call_ptr& c) {
  c->conn = conn;
  conn->req = {};
  conn->req.method(http::verb::post);
  conn->req.target(endpoint_.target);
  conn->req.version(11);
  conn->req.set(http::field::host, endpoint_.port == "80" ? endpoint_.host : endpoint_.host + ":" + endpoint_.port);
  conn->req.set(http::field::content_type, "application/json");
  conn->req.set(http::field::user_agent, "herald");
  conn->req.body() = c->body;
  conn->req.prepare_payload();
  http::async_write(conn->socket, conn->req, [this, conn, c](const boost::system::error_code& ec, std::size_t) {
    if (c->finished) return drop(conn);
    if (ec) return on_io_error(conn, c, ec, false);
    conn->parser.emplace();
    conn->parser->body_limit(limits_.max_reply_bytes);
    conn->parser->header_limit(16 * 1024);
    http::async_read(conn->socket, conn->buffer, *conn->parser,
                     [this, conn, c](const boost::system::error_code& ec, std::size_t) {
                       if (c->finished) return drop(conn);
                       if (ec) return on_io_error(conn, c, ec, conn->parser->got_some());
                       on_reply(conn, c);
                     });
  });
}

void hook_client::on_io_error(const conn_ptr& conn, const call_ptr& c, const boost::system::error_code& ec,
                              bool got_reply) {
  const bool stale = conn->reused && !got_reply &&
                     (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
                      ec == net::error::broken_pipe);
  const bool too_big =
      ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::buffer_overflow;
  const bool malformed = got_reply && !too_big && ec != net::error::eof && ec != http::error::end_of_stream &&
                         ec != net::error::connection_reset &&
                         ec.category() == make_error_code(http::error::bad_version).category();
  drop(conn);
  if (stale && !c->resent) {
    // The backend closed the kept-alive connection while it was idle: send once more.
    c->resent = true;
    c->conn.reset();
    return open_and_send(c);
  }
  if (too_big)
    return finish(c, hook_outcome::bad_reply,
                  "the reply exceeds " + std::to_string(limits_.max_reply_bytes) + " bytes");
  if (malformed) return finish(c, hook_outcome::bad_reply, "malformed HTTP reply: " + ec.message());
  finish(c, hook_outcome::unavailable, "connection lost: " + ec.message());
}

void hook_client::on_reply(const conn_ptr& conn, const call_ptr& c) {
  auto res = conn->parser->release();
  conn->parser.reset();
  const unsigned status = res.result_int();
  const bool keep = res.keep_alive();
  if (status / 100 != 2)
    finish(c, hook_outcome::unavailable, "the backend answered HTTP " + std::to_string(status));
  else
    finish(c, hook_outcome::ok, std::move(res.body()));
  if (keep)
    release(conn);
  else
    drop(conn);
}

void hook_client::release(const conn_ptr& conn) {
  conn->reused = true;
  if (conn->buffer.size() != 0) return drop(conn);  // bytes after the reply: not a clean connection
  while (!pending_.empty()) {
    auto next = std::move(pending_.front());
    pending_.pop_front();
    if (!next->finished) return send(conn, next);
  }
  idle_.push_back(conn);
}

void hook_client::drop(const conn_ptr& conn) {
  boost::system::error_code ec;
  if (conn->socket.is_open()) conn->socket.close(ec);
  --open_;
  while (!pending_.empty() && open_ < limits_.pool_size) {
    auto next = std::move(pending_.front());
    pending_.pop_front();
    if (!next->finished) return open_and_send(next);
  }
}

void hook_client::on_timeout(const call_ptr& c) {
  auto conn = c->conn;
  if (!conn) {
    auto it = std::find(pending_.begin(), pending_.end(), c);
    if (it != pending_.end()) pending_.erase(it);
  }
  finish(c, hook_outcome::timeout, "no answer within " + std::to_string(limits_.timeout.count()) + " ms");
  // Closing cancels the connection's operation, whose handler then drops it.
  boost::system::error_code ec;
  if (conn) conn->socket.close(ec);
}

void hook_client::finish(const call_ptr& c, hook_outcome o, std::string text) {
  if (c->finished) return;
  c->finished = true;
  c->timer.cancel();
  c->conn.reset();
  hook_response r;
  r.outcome = o;
  (o == hook_outcome::ok ? r.body : r.detail) = std::move(text);
  net::post(ioc_, [done = std::move(c->done), r = std::move(r)]() mutable { done(std::move(r)); });
}

}  // namespace herald::transport
