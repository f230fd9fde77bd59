#include "config/option_table.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>
#include <type_traits>

#include <boost/asio/ip/address.hpp>

#include "config/hook_url.hpp"
#include "util/parse_decimal.hpp"

namespace herald::config {

namespace po = boost::program_options;

void require(bool ok, const std::string& setting, const std::string& why) {
  if (!ok) throw config_error("invalid " + setting + ": " + why);
}

bool parse_bool(std::string_view v, const std::string& setting) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw config_error("invalid " + setting + ": expected true or false, got \"" + std::string(v) + "\"");
}

unsigned long long parse_number(std::string_view v, const std::string& setting) {
  auto n = util::parse_decimal(v);
  if (!n)
    throw config_error("invalid " + setting + ": expected a non-negative integer, got \"" + std::string(v) + "\"");
  return *n;
}

namespace {

template <class T>
struct is_duration : std::false_type {};
template <class R, class P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

// A field's value as the option's type, and back: durations travel as their count.
template <class V, class F>
V to_value(const F& f) {
  if constexpr (is_duration<F>::value)
    return static_cast<V>(f.count());
  else
    return f;
}
template <class F, class V>
void from_value(F& f, V v) {
  if constexpr (is_duration<F>::value)
    f = F(v);
  else
    f = v;
}

// A bound checked when the option is applied: "invalid NAME: WHY" outside min..max.
struct range {
  unsigned long long min = 0, max = std::numeric_limits<unsigned long long>::max();
  const char* why = nullptr;  // null: no bound
};
constexpr range at_least(unsigned long long min, const char* why) {
  return {min, std::numeric_limits<unsigned long long>::max(), why};
}
constexpr range at_most(unsigned long long max, const char* why) { return {0, max, why}; }
constexpr range between(unsigned long long min, unsigned long long max, const char* why) { return {min, max, why}; }
constexpr range positive = at_least(1, "must be positive");

// A scalar option with `def` as its default, applied by `set`.
template <class V>
option_row custom(const char* name, const char* help, V def, std::function<void(V, settings&)> set) {
  return {name, help, [def] { return po::value<V>()->default_value(def); },
          [name, set](const po::variables_map& vm, settings& s) { set(vm[name].template as<V>(), s); }};
}

// A scalar option stored in the field `get` returns, checked against `r`; its default is
// that field of a default-constructed config.
template <class V, class Get>
option_row field(const char* name, const char* help, Get get, range r = {}) {
  settings defaults;
  const V def = to_value<V>(get(defaults));
  return custom<V>(name, help, def, [name, get, r](V v, settings& s) {
    if constexpr (std::is_arithmetic_v<V> && !std::is_same_v<V, bool>)
      if (r.why) require(v >= r.min && v <= r.max, name, r.why);
    from_value(get(s), v);
  });
}

// A repeatable option without a default; `set` (null: applied by hand) runs when given.
option_row list(const char* name, const char* help,
                std::function<void(const std::vector<std::string>&, settings&)> set = nullptr) {
  option_row row{name, help, [] { return po::value<std::vector<std::string>>(); }, nullptr};
  if (set)
    row.apply = [name, set](const po::variables_map& vm, settings& s) {
      if (vm.count(name)) set(vm[name].as<std::vector<std::string>>(), s);
    };
  return row;
}

// A string option shown and applied by hand (no apply), with a default from the structs.
option_row by_hand(const char* name, const char* help, std::string def) {
  return {name, help, [def] { return po::value<std::string>()->default_value(def); }, nullptr};
}
template <class V>
option_row by_hand(const char* name, const char* help, V def) {
  return {name, help, [def] { return po::value<V>()->default_value(def); }, nullptr};
}

void set_listen(const std::string& listen, settings& s) {
  auto& c = s.c;
  auto colon = listen.rfind(':');
  require(colon != std::string::npos && colon > 0, "listen", "expected HOST:PORT, got \"" + listen + "\"");
  c.host = listen.substr(0, colon);
  if (c.host.size() > 2 && c.host.front() == '[' && c.host.back() == ']') c.host = c.host.substr(1, c.host.size() - 2);
  if (c.host == "localhost") c.host = "127.0.0.1";
  boost::system::error_code ec;
  boost::asio::ip::make_address(c.host, ec);
  require(!ec, "listen", "host must be an IP address (or localhost), got \"" + c.host + "\"");
  auto port = parse_number(std::string_view(listen).substr(colon + 1), "listen port");
  require(port < 65536, "listen", "port must be 0-65535 (0: any free port)");
  c.port = static_cast<unsigned short>(port);
}

void set_origins(const std::vector<std::string>& origins, settings& s) {
  for (const auto& o : origins)
    require(o == "*" || (o.find("://") != std::string::npos && o.find('/', o.find("://") + 3) == std::string::npos),
            "allowed-origins", "\"" + o + "\" is not an origin (scheme://host[:port], no path) or *");
  s.c.transport.allowed_origins = origins;
}

void add_token_keys(const std::vector<std::string>& specs, settings& s) {
  for (const auto& spec : specs) {
    try {
      s.c.auth.keys.add(spec);
    } catch (const std::invalid_argument& e) {
      throw config_error(std::string("invalid token-key: ") + e.what());
    }
  }
}

// A hook's URL, checked and split.
template <class Get>
option_row hook(const char* name, const char* help, Get get) {
  settings defaults;
  return custom<std::string>(name, help, get(defaults).url,
                             [name, get](std::string v, settings& s) { get(s) = parse_hook_url(v, name); });
}

constexpr const char* level_names[] = {"debug", "info", "warn", "error"};
constexpr const char* format_names[] = {"text", "json"};

std::string namespace_help() {
  std::string h = "NAME:";
  for (const auto& k : namespace_keys()) {
    if (h.size() > 5) h += ',';
    h += std::string(k.name) + '=' + k.placeholder;
  }
  return h + " (repeatable)";
}

#define HERALD_FIELD(expr) \
  [](settings & s) -> auto& { return s.expr; }

std::vector<option_row> make_rows() {
  const settings d;
  const auto& dc = d.c;
  static const std::string ns_help = namespace_help();
  // clang-format off
  return {
    {"help,h", "print this help and exit", nullptr, nullptr},
    {"version", "print the version and exit", nullptr, nullptr},
    {"config", "read options from this file (key = value lines)", [] { return po::value<std::string>(); }, nullptr},
    custom<std::string>("listen", "address to listen on, HOST:PORT", dc.host + ":" + std::to_string(dc.port), set_listen),
    field<std::string>("tls-cert", "PEM certificate chain: serve HTTPS (and wss) on the listening port, with --tls-key; reloaded on SIGHUP (empty: plain HTTP)", HERALD_FIELD(c.transport.tls_cert)),
    field<std::string>("tls-key", "PEM private key of --tls-cert (reloaded with it on SIGHUP)", HERALD_FIELD(c.transport.tls_key)),
    field<unsigned>("tls-handshake-timeout", "seconds a TLS handshake may take before the connection is cut", HERALD_FIELD(c.transport.tls_handshake_timeout), positive),
    field<bool>("http2", "serve HTTP/2 (SSE, long polling, the API, static files): offered through ALPN over TLS, and on plain HTTP to clients that open with its preface", HERALD_FIELD(c.transport.http2)),
    custom<unsigned>("threads", "event-loop threads (0: one per core, max 64)", dc.threads, [](unsigned n, settings& s) {
      s.c.threads = n == 0 ? std::max(1u, std::thread::hardware_concurrency()) : n;
      require(s.c.threads <= 64, "threads", "at most 64");
    }),
    field<std::string>("broker", "memory | redis://HOST:PORT[,redis://...] | sentinel://MASTER[,...] (with --sentinels)", HERALD_FIELD(c.broker)),
    field<std::string>("api-key", "require Authorization: Bearer KEY on /api/* (empty: open)", HERALD_FIELD(c.api.api_key)),
    field<std::string>("web-root", "directory of static files served by GET, / being index.html (empty: the built-in demo page)", HERALD_FIELD(c.api.web_root)),
    field<std::size_t>("history-size", "messages kept per channel (default namespace)", HERALD_FIELD(ns.history_size), at_most(1'000'000, "at most 1000000")),
    field<unsigned>("history-ttl", "seconds a message is kept (default namespace; 0: no age limit)", HERALD_FIELD(ns.history_ttl)),
    field<bool>("client-publish", "clients without a token may publish where they may subscribe (default namespace)", HERALD_FIELD(ns.client_publish)),
    field<bool>("anonymous", "clients without a token may subscribe (default namespace)", HERALD_FIELD(ns.anonymous)),
    field<std::size_t>("max-subscribers", "subscribers per channel and node (default namespace; 0: no limit)", HERALD_FIELD(ns.max_subscribers)),
    list("namespace", ns_help.c_str()),  // applied by hand, on top of the default namespace
    list("token-key", "a key verifying connection tokens (JWT): [KID=]hs256:SECRET, [KID=]hs256:@FILE or [KID=]rs256:@PUBLIC.pem (repeatable, for rotation; none: tokens are refused)", add_token_keys),
    field<std::string>("token-issuer", "required iss claim of tokens (empty: not checked)", HERALD_FIELD(c.auth.policy.issuer)),
    field<std::string>("token-audience", "required aud claim of tokens (empty: not checked)", HERALD_FIELD(c.auth.policy.audience)),
    field<unsigned>("token-leeway", "seconds of clock skew allowed on exp and nbf", HERALD_FIELD(c.auth.policy.leeway)),
    field<unsigned>("ticket-ttl", "seconds a ticket from POST /ticket stays valid (single use)", HERALD_FIELD(c.auth.ticket_ttl), between(1, 3600, "must be 1..3600")),
    field<std::size_t>("max-message-size", "max bytes of a message's data (compact JSON)", HERALD_FIELD(c.api.max_data_bytes)),
    field<std::size_t>("max-body-size", "max bytes of a request body", HERALD_FIELD(c.transport.max_body_bytes)),
    field<std::size_t>("max-header-size", "max bytes of a request line and headers", HERALD_FIELD(c.transport.max_header_bytes), at_least(1024, "at least 1024")),
    field<std::size_t>("max-broadcast-channels", "max channels in one broadcast", HERALD_FIELD(c.api.max_broadcast_channels), positive),
    field<unsigned>("request-timeout", "seconds to receive a whole request", HERALD_FIELD(c.transport.request_timeout), positive),
    field<unsigned>("keepalive-timeout", "seconds an idle keep-alive connection is kept", HERALD_FIELD(c.transport.keepalive_timeout), positive),
    field<unsigned>("sse-heartbeat", "seconds of silence before an SSE heartbeat comment", HERALD_FIELD(c.transport.sse_heartbeat), positive),
    field<unsigned>("sse-retry", "reconnect delay hint sent to EventSource, ms", HERALD_FIELD(c.transport.sse_retry)),
    field<unsigned>("poll-timeout", "default long-poll hold, seconds", HERALD_FIELD(c.transport.poll_timeout)),
    field<unsigned>("poll-timeout-max", "cap of the long-poll timeout parameter, seconds", HERALD_FIELD(c.transport.poll_timeout_max)),
    field<std::size_t>("poll-limit", "default messages per long-poll reply", HERALD_FIELD(c.transport.poll_limit)),
    field<std::size_t>("poll-limit-max", "cap of the long-poll limit parameter", HERALD_FIELD(c.transport.poll_limit_max)),
    field<std::size_t>("replay-limit", "max messages replayed per channel on resume", HERALD_FIELD(c.transport.replay_limit)),
    field<unsigned>("write-hold-ms", "SSE and WebSocket: ms a write may wait while the peer has not acknowledged the previous one, so that messages arriving meanwhile share its TCP segment (0: never wait)", HERALD_FIELD(c.transport.write_hold), at_most(1000, "at most 1000")),
    field<std::size_t>("max-queued-bytes", "per-connection outbound cap; past it the reader is cut as slow", HERALD_FIELD(c.transport.max_queued_bytes), at_least(4096, "at least 4096")),
    field<std::size_t>("max-channels-per-connection", "channels one connection may subscribe to (max 40: a cursor stays within 1 KiB)", HERALD_FIELD(c.transport.max_channels_per_connection), between(1, 40, "must be 1..40 (a cursor of 40 channels fits the contract's 1 KiB)")),
    field<std::size_t>("max-channels", "channels the memory broker holds at most", HERALD_FIELD(c.memory.max_channels)),
    field<unsigned>("channel-idle-ttl", "seconds before an empty, unsubscribed channel is reclaimed", HERALD_FIELD(c.memory.idle_ttl)),
    field<unsigned>("sweep-interval", "seconds between history expiry sweeps", HERALD_FIELD(c.sweep_interval), positive),
    custom<double>("drain-seconds", "on SIGTERM, seconds over which clients are told to reconnect elsewhere (a second signal stops at once)", static_cast<double>(dc.drain_window.count()) / 1000, [](double v, settings& s) {
      require(v >= 0 && v <= 3600, "drain-seconds", "must be 0..3600");
      s.c.drain_window = std::chrono::milliseconds(static_cast<long long>(v * 1000));
    }),
    // The Redis options are applied (and checked) by hand, only with a Redis broker.
    by_hand<unsigned>("redis-timeout", "ms a Redis command may go unanswered before the connection is dropped (503, not ready)", static_cast<unsigned>(dc.redis.command_timeout.count())),
    by_hand("sentinels", "Redis Sentinels asked for the primaries of sentinel:// shards, HOST:PORT[,HOST:PORT...] (port 26379 by default)", std::string()),
    by_hand<unsigned>("sentinel-poll", "ms between two questions to a sentinel for a primary's address (a lost connection asks at once)", static_cast<unsigned>(dc.redis.sentinel_poll.count())),
    by_hand<unsigned>("redis-meta-ttl", "seconds a channel's epoch and offset survive in Redis without publishes (0: forever)", static_cast<unsigned>(dc.redis.meta_ttl.count())),
    field<std::size_t>("ws-max-message", "max bytes of one WebSocket client message (after inflate)", HERALD_FIELD(c.transport.ws_max_message), at_least(1024, "at least 1024")),
    field<unsigned>("ws-ping-interval", "seconds of silence before the server pings a WebSocket", HERALD_FIELD(c.transport.ws_ping_interval), positive),
    field<unsigned>("ws-pong-timeout", "seconds to answer a ping before the connection is closed (4001)", HERALD_FIELD(c.transport.ws_pong_timeout), positive),
    field<bool>("ws-deflate", "negotiate permessage-deflate (no context takeover)", HERALD_FIELD(c.transport.ws_deflate)),
    list("allowed-origins", "browser origins allowed cross-origin on /ws (Origin check) and /sse, /poll, /publish, /ticket (CORS): exact origins or * (repeatable; none: no policy)", set_origins),
    field<bool>("cors-credentials", "send Access-Control-Allow-Credentials: true to allowed origins", HERALD_FIELD(c.transport.cors_credentials)),
    field<std::size_t>("max-connections-per-ip", "open connections from one address (0: no limit; behind a proxy every client shares its address)", HERALD_FIELD(c.transport.max_connections_per_ip)),
    field<std::size_t>("max-polls-per-ip", "long polls held at once for one address (0: no limit)", HERALD_FIELD(c.transport.max_polls_per_ip)),
    field<unsigned>("ws-commands-per-second", "commands one WebSocket connection may send per second, burst of one second's worth (0: no limit)", HERALD_FIELD(c.transport.ws_commands_per_second)),
    hook("connect-hook", "URL (http://HOST[:PORT]/PATH) the backend is asked at on each connection (WebSocket, SSE, each long poll); empty: none", HERALD_FIELD(c.transport.hooks.connect)),
    hook("subscribe-hook", "URL the backend is asked at on each subscription; empty: none", HERALD_FIELD(c.transport.hooks.subscribe)),
    hook("publish-hook", "URL the backend is asked at on each client publish, which may replace the data; empty: none", HERALD_FIELD(c.transport.hooks.publish)),
    field<unsigned>("hook-timeout", "ms a hook call may take before the client gets 503 hook_timeout", HERALD_FIELD(c.transport.hooks.timeout), between(1, 60000, "must be 1..60000")),
    field<std::size_t>("hook-pool-size", "keep-alive connections to each hook's backend, per thread", HERALD_FIELD(c.transport.hooks.pool_size), between(1, 1024, "must be 1..1024")),
    field<std::size_t>("hook-max-pending", "hook calls waiting for a connection, per thread and hook; past it 503 hook_overloaded", HERALD_FIELD(c.transport.hooks.max_pending)),
    custom<std::string>("log-level", "least severe log lines written to stderr: debug | info | warn | error", level_names[static_cast<int>(dc.log_level)], [](std::string v, settings& s) {
      const auto lvl = util::log::parse_level(v);
      require(lvl.has_value(), "log-level", "expected debug, info, warn or error, got \"" + v + "\"");
      s.c.log_level = *lvl;
    }),
    custom<std::string>("log-format", "log lines as key=value text or JSON objects: text | json", format_names[static_cast<int>(dc.log_format)], [](std::string v, settings& s) {
      const auto fmt = util::log::parse_format(v);
      require(fmt.has_value(), "log-format", "expected text or json, got \"" + v + "\"");
      s.c.log_format = *fmt;
    }),
  };
  // clang-format on
}

#undef HERALD_FIELD

// A --namespace key stored in a field of namespace_options.
template <class F>
namespace_key ns_number(const char* name, const char* placeholder, F core::namespace_options::*m) {
  return {name, placeholder, [name, m](std::string_view v, const std::string& setting, core::namespace_options& o) {
            from_value(o.*m, parse_number(v, setting + " " + name));
          }};
}
namespace_key ns_bool(const char* name, bool core::namespace_options::*m) {
  return {name, "BOOL", [name, m](std::string_view v, const std::string& setting, core::namespace_options& o) {
            o.*m = parse_bool(v, setting + " " + name);
          }};
}

}  // namespace

const std::vector<option_row>& option_rows() {
  static const std::vector<option_row> rows = make_rows();
  return rows;
}

const std::vector<namespace_key>& namespace_keys() {
  using o = core::namespace_options;
  static const std::vector<namespace_key> keys = {
      ns_number("history_size", "N", &o::history_size),
      ns_number("history_ttl", "S", &o::history_ttl),
      ns_number("history_bytes", "N", &o::history_bytes),
      ns_bool("client_publish", &o::client_publish),
      ns_bool("anonymous", &o::anonymous),
      ns_number("max_subscribers", "N", &o::max_subscribers),
      ns_number("stream_coalesce_ms", "MS", &o::stream_coalesce),
      ns_number("stream_idle_timeout", "S", &o::stream_idle_timeout),
      ns_number("stream_max_bytes", "N", &o::stream_max_bytes),
      ns_number("stream_max_duration", "S", &o::stream_max_duration),
      ns_bool("presence", &o::presence),
      ns_bool("join_leave", &o::join_leave),
      ns_bool("personal", &o::personal),
  };
  return keys;
}

}  // namespace herald::config
