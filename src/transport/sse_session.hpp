#pragma once
// GET /sse: one Server-Sent Events stream (docs/protocol.md has the bytes).
//
// After the response head: a `retry:` hint, then `event: reset` for channels whose gap
// history could not cover, the replayed messages, an `id:` line with the position, and
// live messages. Each event's `id:` is the cursor after it, so a reconnecting
// EventSource resumes exactly through Last-Event-ID. Output is corked per loop pass
// and capped per connection: a replay larger than the cap is paced by the writes
// (consuming pauses, then resumes from history); a live reader that falls behind past
// the cap is cut and counted.
#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "core/subscriber_session.hpp"
#include "metrics/metrics.hpp"
#include "transport/shared_state.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/thread_context.hpp"
#include "transport/write_queue.hpp"

namespace herald::transport {

class sse_session final : public core::subscriber_session, public tickable, public flushable {
 public:
  sse_session(net::ip::tcp::socket socket, thread_context& tc, shared_state& st);
  ~sse_session();

  void start(subscribe_request req);

 private:
  void on_reset(std::span<const std::string> channels) override;
  bool on_message(const protocol::message_ptr& m, bool single) override;
  void on_synced() override;
  void on_error(const std::string& channel, const util::api_error& e) override;
  void on_tick(std::int64_t now_ms) override;
  void drain() override;
  void flush() override;

  std::shared_ptr<sse_session> self();
  void send_head();
  void wait_readable();
  void on_write(const boost::system::error_code& ec, std::size_t bytes);
  void check_cap();
  void close();

  net::ip::tcp::socket socket_;
  thread_context& tc_;
  shared_state& st_;
  write_queue out_;
  std::int64_t last_write_s_;
  bool head_sent_ = false;
  bool live_ = false;  // replay done: past the cap now means a slow reader
  bool closing_ = false;
  bool close_after_write_ = false;
  metrics::gauge_guard gauge_{metrics::gauge::connections_sse};
};

}  // namespace herald::transport
