#pragma once
// GET /sse: one Server-Sent Events stream (docs/protocol.md has the bytes).
//
// After the response head: a `retry:` hint, then `event: reset` for channels whose gap
// history could not cover, the replayed messages, an `id:` line with the position, and
// live messages. Each event's `id:` is the cursor after it, so a reconnecting
// EventSource resumes exactly through Last-Event-ID. Output, replay pacing and the
// slow-reader cap come from stream_session; a slow live reader's stream is ended.
// When the connection's token expires, an `event: token_expired` ends the stream.
// With format=raw the events carry the data alone (and the id, a compact cursor on a
// one-channel stream); the signals keep their form.
#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "metrics/metrics.hpp"
#include "transport/http_response.hpp"
#include "transport/stream_session.hpp"
#include "transport/subscribe_request.hpp"

namespace herald::transport {

class sse_session final : public stream_session {
 public:
  /// `tls`: the TLS stream of an https connection (null: plain, on `socket`).
  sse_session(tcp_socket socket, std::unique_ptr<tls_stream> tls, thread_context& tc, shared_state& st);

  /// `headers`: extra response headers (CORS).
  void start(subscribe_request req, header_list headers = {});

 private:
  void on_reset(std::span<const std::string> channels) override;
  bool on_message(const protocol::message_ptr& m, bool single) override;
  void on_synced() override;
  void on_error(const std::string& channel, const util::api_error& e) override;
  void on_signal(const protocol::message_ptr& m) override;
  bool apply_user_command(const protocol::user_command& c) override;
  void on_tick(std::int64_t now_ms) override;
  void drain() override;
  bool can_write() const noexcept override { return !closing_; }
  bool consuming() const noexcept override { return !closing_; }
  void end() override { close(); }

  std::shared_ptr<sse_session> self();
  /// The cursor the stream's ids carry: the long form, or in raw format the compact
  /// form of a one-channel stream.
  std::string position() const;
  void send_head();
  void wait_readable();
  void close();

  header_list extra_headers_;  // until the head is sent
  bool head_sent_ = false;
  bool error_sent_ = false;  // an error reply is queued: the stream never starts
  bool closing_ = false;
  bool raw_ = false;  // format=raw
  metrics::gauge_guard gauge_{metrics::gauge::connections_sse};
};

}  // namespace herald::transport
