#include "transport/stream_session.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <utility>

#include <boost/asio/write.hpp>

#include "metrics/metrics.hpp"
#include "transport/http_response.hpp"
#include "transport/lingering_close.hpp"
#include "util/clock.hpp"

namespace herald::transport {

stream_session::stream_session(tcp_socket socket, std::unique_ptr<tls_stream> tls, thread_context& tc, shared_state& st,
                               core::transport kind)
    : core::subscriber_session(st.core, tc.index(), kind),
      socket_(std::move(socket)),
      tls_(std::move(tls)),
      tc_(tc),
      st_(st),
      last_write_s_(static_cast<std::int32_t>(tc.now_s())) {}

stream_session::~stream_session() {
  tc_.remove_tickable(this);
  if (user_listed_) st_.core.users->remove(tc_.index(), who_->user, this);
}

std::shared_ptr<stream_session> stream_session::self() {
  return std::static_pointer_cast<stream_session>(shared_from_this());
}

void stream_session::list_user() {
  if (user_listed_ || !who_ || who_->user.empty() || !st_.core.users) return;
  st_.core.users->add(tc_.index(), who_->user, this);
  user_listed_ = true;
}

void stream_session::shut_down() {
  if (user_listed_) {
    st_.core.users->remove(tc_.index(), who_->user, this);
    user_listed_ = false;
  }
  unsubscribe_all();
  tc_.remove_tickable(this);
  const bool writing = out_.writing();
  if (sink_) {
    // The stream ends after what it has taken; a write still in flight is dropped with it.
    std::exchange(sink_, nullptr)->sink_close(!writing);
    out_.clear();
    return;
  }
  out_.clear();
  boost::system::error_code ignored;
  auto& s = sock();
  if (writing) {
    // A write still pending after the close timeout: the peer reads nothing, so nothing
    // of ours could be saved by lingering.
    s.shutdown(tcp_socket::shutdown_both, ignored);
    s.close(ignored);
    return;
  }
  s.cancel(ignored);  // the transport's pending read (or wait) completes, aborted
  // TLS: the pending read completes aborted; the TLS stream lives until then (with this
  // session), the socket goes. No close_notify (http_session.cpp, close()).
  lingering_close(tls_ ? tls_->next_layer().release_socket() : std::move(socket_), tc_);
}

bool stream_session::token_expired() const noexcept { return who_ && who_->expired(util::unix_ms()); }

void stream_session::schedule_flush() {
  if (!flush_pending_) tc_.want_flush(self());  // already due: no reference taken
}

void stream_session::queue_head(int status, std::string_view content_type, long long content_length, bool keep_alive,
                                const header_list& headers) {
  if (sink_) return sink_->sink_head(status, content_type, content_length, headers);
  out_.push_copy(http_head(status, content_type, content_length, keep_alive, headers));
}

void stream_session::flush() {
  // A head alone (an HTTP/2 204) went to the sink: nothing to write, the response ends.
  if (sink_ && close_after_write_ && !out_.writing() && out_.empty()) return end();
  if (!can_write() || out_.writing() || out_.empty()) return;
  if (sink_) return write();  // the HTTP/2 connection gathers its streams' writes itself
  // The peer has not acknowledged the last write yet: another small segment now would
  // cost as much as the first. Hold it (bounded by --write-hold-ms) so that what comes
  // meanwhile leaves with it; a backlog of 16 KiB goes at once. A peer that
  // acknowledges promptly is never held.
  constexpr std::size_t hold_below_bytes = 16 * 1024;
  const bool small = out_.pending_bytes() < hold_below_bytes;
  if (held_ && small) return;  // the hold's end writes it
  if (!held_ && small && tc_.write_hold().count() > 0) {
    int unacked = 0;
    if (::ioctl(sock().native_handle(), SIOCOUTQ, &unacked) == 0 && unacked > 0) {
      metrics::add(metrics::counter::write_holds);
      return tc_.hold(self());
    }
  }
  write();
}

void stream_session::flush_now() {
  if (!can_write() || out_.writing() || out_.empty()) return;
  write();
}

void stream_session::write() {
  last_write_s_ = static_cast<std::int32_t>(tc_.now_s());
  auto done = [s = self()](const boost::system::error_code& ec, std::size_t n) { s->on_write(ec, n); };
  if (sink_)
    sink_->sink_write(out_.start(), std::move(done));
  else if (tls_)
    net::async_write(*tls_, buffer_view(out_.start()), std::move(done));
  else
    net::async_write(socket_, buffer_view(out_.start()), std::move(done));
}

bool stream_session::signal_fits() const noexcept {
  if (out_.pending_bytes() < st_.opts.max_queued_bytes) return true;
  metrics::add(metrics::counter::signal_drops);
  return false;
}

void stream_session::on_write(const boost::system::error_code& ec, std::size_t bytes) {
  if (!sink_) metrics::add(metrics::counter::bytes_out, bytes);  // an HTTP/2 connection counts its own
  out_.done();
  if (ec) return end();
  if (paused() && consuming() && out_.pending_bytes() < st_.opts.max_queued_bytes / 2) resume_consuming();
  if (out_.queued_bytes() < st_.opts.max_queued_bytes / 2) on_output_drained();
  if (!out_.empty()) return flush();
  if (close_after_write_) end();
}

}  // namespace herald::transport
