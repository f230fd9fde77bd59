#pragma once
// Process-wide counters and gauges, exported in Prometheus text format.
//
// The delivery path increments counters from several threads at once; to keep that
// free of shared cache lines each thread owns a slot (single writer, relaxed atomics)
// and a scrape sums the slots. A leaf module: any layer may include it.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace herald::metrics {

enum class counter : unsigned {
  publishes,       // messages accepted by the broker
  publish_errors,  // publishes refused (bad input, broker unavailable)
  deliveries_sse,  // messages queued to subscribers, per transport
  deliveries_poll,
  deliveries_ws,
  bytes_out,         // bytes written to client sockets
  bytes_in,          // bytes read from client sockets
  write_holds,       // streaming writes held while the peer had not acknowledged the last one
  slow_disconnects,  // connections closed because their queue passed the byte cap
  drops,             // messages not delivered to a subscriber (connection closing or cut)
  resets,            // subscriptions told that history could not cover their gap
  sync_overflows,    // live messages not kept while a subscription synced (re-read later)
  // Signals: live-only messages (docs/presence.md).
  ephemeral_publishes,  // ephemeral messages accepted (live only, no offset)
  signals_delivered,    // ephemeral, join and leave messages queued to subscribers
  signal_drops,         // signals not queued: the connection's backlog or reply was full
  http_requests,
  http_client_errors,        // 4xx replies
  http_server_errors,        // 5xx replies
  bad_connections,           // connections closed for unparseable bytes or limits
  accept_errors,             // failed accepts (e.g. out of file descriptors)
  auth_refused,              // bad, expired or unknown tokens and tickets
  auth_forbidden,            // subscribes and publishes the policy or the token does not allow
  origin_refused,            // requests and WebSocket handshakes from an Origin not allowed
  token_expiries,            // live connections ended because their token expired
  limit_connections_per_ip,  // refusals per limit (herald_limit_refusals_total{limit=..})
  limit_polls_per_ip,
  limit_channels_per_connection,
  limit_commands_per_second,
  limit_max_subscribers,
  limit_message_size,  // WebSocket messages, request bodies and message data too big
  limit_header_size,
  limit_request_timeout,      // requests (or WebSocket handshakes) not received in time: slowloris
  internal_errors,            // exceptions that escaped an event-loop handler (bugs; each one logged)
  stream_ingests,             // POST /api/stream requests that started
  stream_stops,               // live ingests stopped (aborted)
  stream_timeouts,            // ingests ended by the idle limit or the maximum duration
  tls_handshakes_ok,          // TLS handshakes per result (herald_tls_handshakes_total{result=..})
  tls_handshakes_timeout,     // not finished within --tls-handshake-timeout
  tls_handshakes_plain_http,  // plain HTTP sent to the TLS port (answered with a 400 in clear)
  tls_handshakes_error,       // anything else: not TLS, no common version or cipher, closed midway
  // HTTP/2 (transport/h2_session.hpp).
  h2_streams,                // requests received over HTTP/2
  h2_resets_by_client,       // RST_STREAM frames received (herald_h2_stream_resets_total{by=..})
  h2_resets_by_server,       // streams herald reset (limits, stalls, HTTP/1.1-only endpoints)
  h2_goaway_flood,           // connections ended with GOAWAY ENHANCE_YOUR_CALM (reset or stream flood)
  h2_goaway_protocol_error,  // ... for a protocol error (bad frames, a header block past the bound)
  h2_goaway_idle,            // ... idle past the keep-alive timeout, or no request in time
  h2_goaway_drain,           // ... because the server drains
  // Backend hooks (transport/hooks.hpp): herald_hook_requests_total{hook,result}, six
  // results per hook in this order (hooks.cpp relies on it), then the time spent per hook.
  hook_connect_allow,
  hook_connect_refuse,
  hook_connect_timeout,
  hook_connect_unavailable,
  hook_connect_bad_reply,
  hook_connect_overloaded,
  hook_subscribe_allow,
  hook_subscribe_refuse,
  hook_subscribe_timeout,
  hook_subscribe_unavailable,
  hook_subscribe_bad_reply,
  hook_subscribe_overloaded,
  hook_publish_allow,
  hook_publish_refuse,
  hook_publish_timeout,
  hook_publish_unavailable,
  hook_publish_bad_reply,
  hook_publish_overloaded,
  hook_connect_us,  // microseconds from asking to the answer, summed
  hook_subscribe_us,
  hook_publish_us,
  count_
};

enum class gauge : unsigned {
  connections_sse,
  connections_poll,  // held long polls
  connections_ws,
  connections_http,  // open HTTP connections of any kind
  connections_h2,    // of which HTTP/2
  count_
};

/// Adds `n` to a counter (calling thread's slot).
void add(counter c, std::uint64_t n = 1) noexcept;
/// Moves a gauge up or down (calling thread's slot; slots are summed).
void move(gauge g, std::int64_t delta) noexcept;

/// Current totals (sums over threads), for tests and the channels API.
std::uint64_t total(counter c) noexcept;
std::int64_t total(gauge g) noexcept;

/// Registers a gauge computed at scrape time (history size, channel count...).
/// `fn` is called from the scraping thread and must be thread-safe.
void register_callback_gauge(std::string name, std::string help, std::function<double()> fn);

/// Several gauges from one computation (e.g. one broker stats() walk for the channel,
/// history-message and history-byte gauges): `fn` is called once per scrape and returns
/// one value per entry of `gauges`, in order. Same thread-safety rule as above.
struct gauge_info {
  std::string name, help;
};
void register_callback_gauges(std::vector<gauge_info> gauges, std::function<std::vector<double>()> fn);

/// The whole registry in Prometheus text exposition format 0.0.4.
std::string render_prometheus();

/// RAII gauge increment: +1 on construction, -1 on destruction.
class gauge_guard {
 public:
  explicit gauge_guard(gauge g) noexcept : g_(g) { move(g_, 1); }
  ~gauge_guard() { move(g_, -1); }
  gauge_guard(const gauge_guard&) = delete;
  gauge_guard& operator=(const gauge_guard&) = delete;

 private:
  gauge g_;
};

}  // namespace herald::metrics
