#pragma once
// POST /api/stream?channel=C: one producer's body, read as it arrives (for minutes if
// need be), published as the channel's messages, then the stream's end (docs/streams.md).
//
// - text/plain: deltas gathered for the namespace's coalescing window (from the first
//   byte of a batch) become one message, a JSON string, cut on UTF-8 boundaries;
//   application/x-ndjson: one message per line; text/event-stream: one message per
//   upstream event (protocol/ingest_parser.hpp).
// - The end: the body ends → `completed`; the producer's connection breaks, its body is
//   not what its type says, or it stays silent past the idle limit → `error` with a
//   reason; a stop (core::stream_registry) → `aborted`. The reply comes then:
//   {"channel","offset","cursor","state"} with the end message's offset (a refusal is an
//   error body with "state" added). Accepted bytes are published before the end, a
//   partial UTF-8 character aside.
// - Bounded: one read buffer (8 KiB) per ingest; while the messages waiting for the
//   broker hold `max_waiting_bytes`, reading stops (the producer's TCP window holds the
//   rest). One publish in flight at a time, so offsets follow the body's order.
//   Body bytes ≤ stream_max_bytes (413), length ≤ stream_max_duration.
//
// Runs on the connection's thread; borrows the HTTP session's socket until the reply is
// written (then the connection goes on with keep-alive when the body was read whole).
#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "core/broker.hpp"
#include "protocol/ingest_parser.hpp"
#include "transport/http_session.hpp"

namespace herald::transport {

class stream_ingest final : public std::enable_shared_from_this<stream_ingest>, public tickable {
 public:
  enum class kind : std::uint8_t { text, ndjson, sse };
  static constexpr std::size_t max_waiting_bytes = 64 * 1024;
  /// Tries of the end while the broker is unavailable, 500 ms apart.
  static constexpr unsigned max_end_retries = 60;

  /// The media type named by a Content-Type value, or nullopt when it is none of the three.
  static std::optional<kind> kind_of(std::string_view content_type);

  /// `http`'s current request has its head read (and checked), its body not yet.
  stream_ingest(std::shared_ptr<http_session> http, std::string channel, kind k);
  ~stream_ingest();

  /// Lease of the channel's producer in the broker, held while the ingest lives and
  /// renewed every third of it: a second producer on another node is refused, and a
  /// node that dies frees the stream after at most this long.
  static constexpr std::chrono::milliseconds lease_ttl{10'000};
  /// Claims the channel on this node and then on every node sharing the broker (409
  /// stream_busy when it has a live ingest), then reads.
  void start(bool expects_continue);

  void on_tick(std::int64_t now_ms) override;
  /// At the end of the drain window: a stream still live ends `error` ("the server is
  /// shutting down") and its producer is answered 503 draining.
  void drain() override;
  bool drains_last() const noexcept override { return true; }

 private:
  using publish_result = core::broker::publish_result;

  void begin(bool expects_continue);
  void renew_lease();
  void read();
  void on_read(beast::error_code ec);
  std::optional<util::api_error> take(std::string_view bytes);
  void queue(std::vector<protocol::ingest_item>& items);
  void body_ended();
  /// Cuts the read in flight past the idle limit or the maximum duration (each tick).
  void check_limits(std::int64_t now_ms);
  void arm_coalesce();
  void flush_text();
  void pump();
  void on_published(publish_result r);
  /// Decides the end (the first call wins); `reply_error`: the reply is that error;
  /// `can_reply`: false when the producer's connection is gone.
  void finish(std::string_view state, std::string reason, std::optional<util::api_error> reply_error = {},
              bool can_reply = true);
  void stop(std::string reason, std::function<void(publish_result)> done);
  void publish_end();
  void on_end_published(publish_result r);
  void reply();
  std::shared_ptr<stream_ingest> self() { return shared_from_this(); }

  std::shared_ptr<http_session> http_;
  thread_context& tc_;
  shared_state& st_;
  const std::string channel_;
  const kind kind_;
  const core::namespace_options& ns_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::array<char, 8192> buf_;
  protocol::text_deltas text_;
  protocol::ndjson_splitter ndjson_;
  protocol::sse_event_parser sse_;
  std::size_t max_text_bytes_;
  std::deque<protocol::ingest_item> waiting_;  // parsed, not yet published (oldest first)
  std::size_t waiting_bytes_ = 0;
  net::steady_timer coalesce_;
  std::uint32_t coalesce_gen_ = 0;
  bool coalesce_armed_ = false;
  std::int64_t deadline_ms_ = 0;
  std::uint64_t registry_id_ = 0;
  std::string lease_holder_;      // non-empty while the broker's lease is ours
  std::int64_t lease_renew_ms_ = 0;  // when to renew it next
  bool renewing_ = false;
  bool reading_ = false, publishing_ = false, body_done_ = false;
  bool ending_ = false, can_reply_ = true, end_sent_ = false, end_skipped_ = false, replied_ = false;
  const char* timed_out_ = nullptr;  // why check_limits cut the read
  std::int64_t read_started_ms_ = 0;
  unsigned end_retries_ = 0;
  std::string end_state_, end_reason_;
  std::optional<util::api_error> reply_error_;
  std::optional<publish_result> end_result_;
  std::vector<std::function<void(publish_result)>> stop_waiters_;
};

}  // namespace herald::transport
