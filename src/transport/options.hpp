#pragma once
// Limits and timings of the HTTP-facing transports (documented in docs/config.md).
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace herald::transport {

/// A backend hook's URL (http://HOST[:PORT][/PATH]), split for the client; empty: no hook.
struct hook_endpoint {
  std::string url;
  std::string host, port = "80", target = "/";
  bool enabled() const noexcept { return !host.empty(); }
};

/// The backend hooks (docs/http-api.md "Hooks", transport/hooks.hpp).
struct hook_options {
  hook_endpoint connect, subscribe, publish;
  std::chrono::milliseconds timeout{1000};  // per call, from the ask to the answer
  std::size_t pool_size = 8;                // keep-alive connections per thread and hook
  std::size_t max_pending = 1024;           // calls waiting for a connection, per thread and hook
  std::size_t max_reply_bytes = 64 * 1024;  // a reply body past it is a bad reply
  bool any() const noexcept { return connect.enabled() || subscribe.enabled() || publish.enabled(); }
};

struct options {
  std::size_t max_header_bytes = 8 * 1024;       // request line + headers
  std::size_t max_body_bytes = 1024 * 1024;      // request body
  std::chrono::seconds request_timeout{10};      // to receive one whole request
  std::chrono::seconds keepalive_timeout{60};    // idle time between requests
  std::chrono::seconds sse_heartbeat{15};        // comment line on an idle stream
  std::chrono::milliseconds sse_retry{3000};     // reconnect hint sent to EventSource
  std::chrono::seconds poll_timeout{25};         // default hold of a long poll
  std::chrono::seconds poll_timeout_max{120};    // cap of the timeout parameter
  std::size_t poll_limit = 100;                  // default messages per poll reply
  std::size_t poll_limit_max = 1000;             // cap of the limit parameter
  std::size_t replay_limit = 10000;              // messages replayed per channel on resume
  std::size_t max_queued_bytes = 1024 * 1024;    // per connection; past it: slow reader, cut
  std::size_t max_channels_per_connection = 32;  // at most 40: cursors stay within 1 KiB
  std::chrono::milliseconds write_hold{0};       // SSE/WebSocket: hold a write while the peer has not acked the last

  // WebSocket
  std::size_t ws_max_message = 128 * 1024;    // bytes of one client message (after inflate)
  std::chrono::seconds ws_ping_interval{25};  // ping a connection silent for this long
  std::chrono::seconds ws_pong_timeout{10};   // close it if nothing comes back within this
  bool ws_deflate = false;                    // negotiate permessage-deflate

  // Browser origins (transport/origin_policy.hpp)
  std::vector<std::string> allowed_origins;  // exact origins or "*"; empty: no policy
  bool cors_credentials = false;             // Access-Control-Allow-Credentials: true
  std::string scheme = "http";               // how clients reach this server (same-origin check); TLS sets "https"

  // TLS (transport/tls.hpp): both files set, or neither (plain TCP)
  std::string tls_cert;                              // PEM certificate chain
  std::string tls_key;                               // PEM private key
  std::chrono::seconds tls_handshake_timeout{10};    // a handshake not done by then is cut
  bool http2 = true;  // HTTP/2: ALPN h2 over TLS, and the preface on plain TCP (transport/h2_session.hpp)

  // Abuse limits (0: off)
  std::size_t max_connections_per_ip = 0;  // open TCP connections from one address
  std::size_t max_polls_per_ip = 0;        // held long polls from one address
  unsigned ws_commands_per_second = 1000;  // per WebSocket connection (burst: one second's worth)

  hook_options hooks;
};

}  // namespace herald::transport
