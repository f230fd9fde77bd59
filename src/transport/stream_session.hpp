#pragma once
// What the streaming transports (SSE, WebSocket) share: a subscriber session with one
// outbound stream on its socket, and the output policy applied to it.
//
// - Writes: one in flight; what queues meanwhile leaves in the next gather write;
//   schedule_flush() corks it to the end of the loop pass.
// - Replay pacing: while a replay runs (before the transport calls go_live()), a message
//   that would push the backlog past max_queued_bytes is refused: consuming pauses and,
//   once the writes have drained half of it, resumes from history. A big resume is slow,
//   never cut.
// - Slow readers: once live, a backlog past max_queued_bytes is over_cap(); the transport
//   closes the connection in its own way (SSE: end of stream, WebSocket: 4000) and counts it.
#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "auth/authorizer.hpp"
#include "core/subscriber_session.hpp"
#include "transport/ip_counter.hpp"
#include "transport/shared_state.hpp"
#include "transport/stream_sink.hpp"
#include "transport/thread_context.hpp"
#include "transport/tls.hpp"
#include "transport/write_queue.hpp"

namespace herald::transport {

class stream_session : public core::subscriber_session,
                       public core::user_connection,
                       public tickable,
                       public flushable {
 public:
  /// The connection's identity (its token's grants; null: anonymous) and its slot in
  /// the per-address connection count; call before start.
  void adopt(auth::identity who, ip_slot slot) {
    who_ = std::move(who);
    ip_slot_ = std::move(slot);
  }
  /// The response goes to `sink` (a stream of an HTTP/2 connection), not to a socket of
  /// the session's own; call before start.
  void use_sink(std::shared_ptr<stream_sink> sink) { sink_ = std::move(sink); }
  /// The sink's stream ended (the client reset it, or its connection went): ends the session.
  void sink_closed() { end(); }

 protected:
  /// `tls`: the connection's TLS stream (then `socket` is unused); null: plain TCP.
  stream_session(tcp_socket socket, std::unique_ptr<tls_stream> tls, thread_context& tc, shared_state& st,
                 core::transport kind);
  ~stream_session();

  /// True when a message must be refused now to pace a replay (see above).
  bool pace_replay() const noexcept { return !live_ && out_.pending_bytes() >= st_.opts.max_queued_bytes; }
  /// True when a live reader's backlog has passed the cap.
  bool over_cap() const noexcept { return live_ && out_.pending_bytes() > st_.opts.max_queued_bytes; }
  /// The replay is over (call from on_synced): the cap now means a slow reader.
  void go_live() noexcept {
    if (!paused()) live_ = true;
  }
  /// A new replay starts (a WebSocket subscribe): pace again.
  void replaying() noexcept { live_ = false; }
  /// Starts writing what is queued at the end of this loop pass.
  void schedule_flush();
  void flush() final;
  void flush_now() final;

  /// The socket may still take bytes.
  virtual bool can_write() const noexcept = 0;
  /// Messages may still be delivered (a paused replay may resume).
  virtual bool consuming() const noexcept = 0;
  /// Closes the connection now.
  virtual void end() = 0;
  /// A write completed and what is queued is below half the cap (resume reading).
  virtual void on_output_drained() {}
  /// The common part of end(): leaves every channel, stops ticking, drops what is
  /// queued and closes the socket.
  void shut_down();
  /// Lists the connection under its token's user (the users API); anonymous: not listed.
  /// Undone by shut_down().
  void list_user();
  /// True once the connection's token has expired (checked on the tick).
  bool token_expired() const noexcept;
  std::string_view presence_user() const noexcept override { return who_ ? std::string_view(who_->user) : ""; }
  /// Signals (ephemeral, join, leave) are disposable: one that finds the backlog at the
  /// cap is dropped and counted (herald_signal_drops_total), the connection is not cut.
  bool signal_fits() const noexcept;

  /// The TCP socket (under the TLS stream, with TLS); unused with a sink.
  tcp_socket& sock() noexcept { return tls_ ? tls_->next_layer().socket() : socket_; }
  /// The response still has somewhere to go (its socket is open, or its sink not closed).
  bool connected() noexcept { return sink_ || sock().is_open(); }
  /// Queues the response head: its text (HTTP/1.1), or to the sink.
  void queue_head(int status, std::string_view content_type, long long content_length, bool keep_alive,
                  const header_list& headers);

  tcp_socket socket_;                // plain TCP
  std::unique_ptr<tls_stream> tls_;  // TLS
  std::shared_ptr<stream_sink> sink_;  // an HTTP/2 stream (then neither of the above)
  thread_context& tc_;
  shared_state& st_;
  write_queue out_;
  auth::identity who_;
  ip_slot ip_slot_;
  std::int32_t last_write_s_;       // when the last write started (SSE heartbeats)
  bool close_after_write_ = false;  // end() once everything queued is written

 private:
  void on_write(const boost::system::error_code& ec, std::size_t bytes);
  void write();
  std::shared_ptr<stream_session> self();

  bool live_ = false;
  bool user_listed_ = false;
};

}  // namespace herald::transport
