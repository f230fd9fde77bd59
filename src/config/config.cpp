#include "config/config.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>

#include "config/hook_url.hpp"
#include "protocol/channel_name.hpp"
#include "util/parse_decimal.hpp"

namespace herald::config {

namespace po = boost::program_options;

namespace {

constexpr const char* version_text = "herald 0.1.0\n";

po::options_description describe() {
  po::options_description d("Options (flag, HERALD_<NAME> environment variable, or config file key)");
  // clang-format off
  d.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", po::value<std::string>(), "read options from this file (key = value lines)")
    ("listen", po::value<std::string>()->default_value("127.0.0.1:8080"), "address to listen on, HOST:PORT")
    ("tls-cert", po::value<std::string>()->default_value(""), "PEM certificate chain: serve HTTPS (and wss) on the listening port, with --tls-key; reloaded on SIGHUP (empty: plain HTTP)")
    ("tls-key", po::value<std::string>()->default_value(""), "PEM private key of --tls-cert (reloaded with it on SIGHUP)")
    ("tls-handshake-timeout", po::value<unsigned>()->default_value(10), "seconds a TLS handshake may take before the connection is cut")
    ("threads", po::value<unsigned>()->default_value(0), "event-loop threads (0: one per core, max 64)")
    ("broker", po::value<std::string>()->default_value("memory"), "memory | redis://HOST:PORT[,redis://...] | sentinel://MASTER[,...] (with --sentinels)")
    ("api-key", po::value<std::string>()->default_value(""), "require Authorization: Bearer KEY on /api/* (empty: open)")
    ("web-root", po::value<std::string>()->default_value(""), "directory of static files served by GET, / being index.html (empty: the built-in demo page)")
    ("history-size", po::value<std::size_t>()->default_value(100), "messages kept per channel (default namespace)")
    ("history-ttl", po::value<unsigned>()->default_value(300), "seconds a message is kept (default namespace; 0: no age limit)")
    ("client-publish", po::value<bool>()->default_value(false), "clients without a token may publish where they may subscribe (default namespace)")
    ("anonymous", po::value<bool>()->default_value(true), "clients without a token may subscribe (default namespace)")
    ("max-subscribers", po::value<std::size_t>()->default_value(0), "subscribers per channel and node (default namespace; 0: no limit)")
    ("namespace", po::value<std::vector<std::string>>(),
        "NAME:history_size=N,history_ttl=S,history_bytes=N,client_publish=BOOL,anonymous=BOOL,max_subscribers=N,"
        "stream_coalesce_ms=MS,stream_idle_timeout=S,stream_max_bytes=N,stream_max_duration=S,presence=BOOL,"
        "join_leave=BOOL,personal=BOOL (repeatable)")
    ("token-key", po::value<std::vector<std::string>>(),
        "a key verifying connection tokens (JWT): [KID=]hs256:SECRET, [KID=]hs256:@FILE or [KID=]rs256:@PUBLIC.pem (repeatable, for rotation; none: tokens are refused)")
    ("token-issuer", po::value<std::string>()->default_value(""), "required iss claim of tokens (empty: not checked)")
    ("token-audience", po::value<std::string>()->default_value(""), "required aud claim of tokens (empty: not checked)")
    ("token-leeway", po::value<unsigned>()->default_value(0), "seconds of clock skew allowed on exp and nbf")
    ("ticket-ttl", po::value<unsigned>()->default_value(30), "seconds a ticket from POST /ticket stays valid (single use)")
    ("max-message-size", po::value<std::size_t>()->default_value(65536), "max bytes of a message's data (compact JSON)")
    ("max-body-size", po::value<std::size_t>()->default_value(1048576), "max bytes of a request body")
    ("max-header-size", po::value<std::size_t>()->default_value(8192), "max bytes of a request line and headers")
    ("max-broadcast-channels", po::value<std::size_t>()->default_value(1000), "max channels in one broadcast")
    ("request-timeout", po::value<unsigned>()->default_value(10), "seconds to receive a whole request")
    ("keepalive-timeout", po::value<unsigned>()->default_value(60), "seconds an idle keep-alive connection is kept")
    ("sse-heartbeat", po::value<unsigned>()->default_value(15), "seconds of silence before an SSE heartbeat comment")
    ("sse-retry", po::value<unsigned>()->default_value(3000), "reconnect delay hint sent to EventSource, ms")
    ("poll-timeout", po::value<unsigned>()->default_value(25), "default long-poll hold, seconds")
    ("poll-timeout-max", po::value<unsigned>()->default_value(120), "cap of the long-poll timeout parameter, seconds")
    ("poll-limit", po::value<std::size_t>()->default_value(100), "default messages per long-poll reply")
    ("poll-limit-max", po::value<std::size_t>()->default_value(1000), "cap of the long-poll limit parameter")
    ("replay-limit", po::value<std::size_t>()->default_value(10000), "max messages replayed per channel on resume")
    ("write-hold-ms", po::value<unsigned>()->default_value(0), "SSE and WebSocket: ms a write may wait while the peer has not acknowledged the previous one, so that messages arriving meanwhile share its TCP segment (0: never wait)")
    ("max-queued-bytes", po::value<std::size_t>()->default_value(1048576), "per-connection outbound cap; past it the reader is cut as slow")
    ("max-channels-per-connection", po::value<std::size_t>()->default_value(32), "channels one connection may subscribe to (max 40: a cursor stays within 1 KiB)")
    ("max-channels", po::value<std::size_t>()->default_value(1000000), "channels the memory broker holds at most")
    ("channel-idle-ttl", po::value<unsigned>()->default_value(60), "seconds before an empty, unsubscribed channel is reclaimed")
    ("sweep-interval", po::value<unsigned>()->default_value(5), "seconds between history expiry sweeps")
    ("drain-seconds", po::value<double>()->default_value(5), "on SIGTERM, seconds over which clients are told to reconnect elsewhere (a second signal stops at once)")
    ("redis-timeout", po::value<unsigned>()->default_value(2000), "ms a Redis command may go unanswered before the connection is dropped (503, not ready)")
    ("sentinels", po::value<std::string>()->default_value(""), "Redis Sentinels asked for the primaries of sentinel:// shards, HOST:PORT[,HOST:PORT...] (port 26379 by default)")
    ("sentinel-poll", po::value<unsigned>()->default_value(500), "ms between two questions to a sentinel for a primary's address (a lost connection asks at once)")
    ("redis-meta-ttl", po::value<unsigned>()->default_value(86400), "seconds a channel's epoch and offset survive in Redis without publishes (0: forever)")
    ("ws-max-message", po::value<std::size_t>()->default_value(131072), "max bytes of one WebSocket client message (after inflate)")
    ("ws-ping-interval", po::value<unsigned>()->default_value(25), "seconds of silence before the server pings a WebSocket")
    ("ws-pong-timeout", po::value<unsigned>()->default_value(10), "seconds to answer a ping before the connection is closed (4001)")
    ("ws-deflate", po::value<bool>()->default_value(false), "negotiate permessage-deflate (no context takeover)")
    ("allowed-origins", po::value<std::vector<std::string>>(),
        "browser origins allowed cross-origin on /ws (Origin check) and /sse, /poll, /publish, /ticket (CORS): exact origins or * (repeatable; none: no policy)")
    ("cors-credentials", po::value<bool>()->default_value(false), "send Access-Control-Allow-Credentials: true to allowed origins")
    ("max-connections-per-ip", po::value<std::size_t>()->default_value(0), "open connections from one address (0: no limit; behind a proxy every client shares its address)")
    ("max-polls-per-ip", po::value<std::size_t>()->default_value(0), "long polls held at once for one address (0: no limit)")
    ("ws-commands-per-second", po::value<unsigned>()->default_value(1000), "commands one WebSocket connection may send per second, burst of one second's worth (0: no limit)")
    ("connect-hook", po::value<std::string>()->default_value(""), "URL (http://HOST[:PORT]/PATH) the backend is asked at on each connection (WebSocket, SSE, each long poll); empty: none")
    ("subscribe-hook", po::value<std::string>()->default_value(""), "URL the backend is asked at on each subscription; empty: none")
    ("publish-hook", po::value<std::string>()->default_value(""), "URL the backend is asked at on each client publish, which may replace the data; empty: none")
    ("hook-timeout", po::value<unsigned>()->default_value(1000), "ms a hook call may take before the client gets 503 hook_timeout")
    ("hook-pool-size", po::value<std::size_t>()->default_value(8), "keep-alive connections to each hook's backend, per thread")
    ("hook-max-pending", po::value<std::size_t>()->default_value(1024), "hook calls waiting for a connection, per thread and hook; past it 503 hook_overloaded")
    ("log-level", po::value<std::string>()->default_value("info"), "least severe log lines written to stderr: debug | info | warn | error")
    ("log-format", po::value<std::string>()->default_value("text"), "log lines as key=value text or JSON objects: text | json");
  // clang-format on
  return d;
}

template <class T>
T get(const po::variables_map& vm, const char* name) {
  return vm[name].as<T>();
}

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

}  // namespace

std::pair<std::string, core::namespace_options> parse_namespace(std::string_view spec, core::namespace_options o) {
  const std::string setting = "namespace \"" + std::string(spec) + "\"";
  auto colon = spec.find(':');
  std::string name(spec.substr(0, colon));
  require(!name.empty() && protocol::valid_channel_name(name) && name.find(':') == std::string::npos, setting,
          "expected NAME:key=value,... with a valid namespace name");
  if (colon == std::string_view::npos) return {name, o};
  std::string_view rest = spec.substr(colon + 1);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    auto eq = kv.find('=');
    require(eq != std::string_view::npos, setting, "expected key=value, got \"" + std::string(kv) + "\"");
    auto key = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (key == "history_size")
      o.history_size = parse_number(value, setting + " history_size");
    else if (key == "history_ttl")
      o.history_ttl = std::chrono::seconds(parse_number(value, setting + " history_ttl"));
    else if (key == "history_bytes")
      o.history_bytes = parse_number(value, setting + " history_bytes");
    else if (key == "client_publish")
      o.client_publish = parse_bool(value, setting + " client_publish");
    else if (key == "anonymous")
      o.anonymous = parse_bool(value, setting + " anonymous");
    else if (key == "max_subscribers")
      o.max_subscribers = parse_number(value, setting + " max_subscribers");
    else if (key == "stream_coalesce_ms")
      o.stream_coalesce = std::chrono::milliseconds(parse_number(value, setting + " stream_coalesce_ms"));
    else if (key == "stream_idle_timeout")
      o.stream_idle_timeout = std::chrono::seconds(parse_number(value, setting + " stream_idle_timeout"));
    else if (key == "stream_max_bytes")
      o.stream_max_bytes = parse_number(value, setting + " stream_max_bytes");
    else if (key == "stream_max_duration")
      o.stream_max_duration = std::chrono::seconds(parse_number(value, setting + " stream_max_duration"));
    else if (key == "presence")
      o.presence = parse_bool(value, setting + " presence");
    else if (key == "join_leave")
      o.join_leave = parse_bool(value, setting + " join_leave");
    else if (key == "personal")
      o.personal = parse_bool(value, setting + " personal");
    else
      throw config_error("invalid " + setting + ": unknown key \"" + std::string(key) +
                         "\" (history_size, history_ttl, history_bytes, client_publish, anonymous, max_subscribers, stream_coalesce_ms, "
                         "stream_idle_timeout, stream_max_bytes, stream_max_duration, presence, join_leave, personal)");
  }
  return {name, o};
}

namespace {

// `file`: the config file's contents, or null to read the file named by --config.
parse_result parse_from(int argc, const char* const* argv, const std::vector<std::string>& env, std::istream* file) {
  auto desc = describe();
  po::variables_map vm;
  try {
    // First stored wins: flags, then environment, then the file.
    po::store(po::parse_command_line(argc, argv, desc), vm);
    std::vector<std::string> names;
    for (auto& opt : desc.options()) names.push_back(opt->long_name());
    auto mapper = [&](const std::string& var) -> std::string {
      if (!var.starts_with("HERALD_")) return "";
      std::string name = var.substr(7);
      for (auto& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::fprintf(stderr, "herald: ignoring unknown environment variable %s\n", var.c_str());
        return "";
      }
      return name;
    };
    {
      // parse_environment reads the process environment; we take the given list instead.
      po::parsed_options parsed(&desc);
      for (auto& kv : env) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        std::string name = mapper(kv.substr(0, eq));
        if (name.empty()) continue;
        po::option opt;
        opt.string_key = name;
        opt.value.push_back(kv.substr(eq + 1));
        opt.original_tokens = {kv};
        parsed.options.push_back(opt);
      }
      po::store(parsed, vm);
    }
    if (file) {
      po::store(po::parse_config_file(*file, desc), vm);
    } else if (vm.count("config")) {
      const auto path = vm["config"].as<std::string>();
      std::ifstream named(path);
      if (!named) throw config_error("invalid config: cannot read file \"" + path + "\"");
      po::store(po::parse_config_file(named, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error_with_option_name& e) {
    // Not e.what(): Boost builds that message by substituting %value% (and the like) in
    // a loop that never ends when a value itself holds such a placeholder (fuzzing
    // finding F2, docs/fuzzing.md). The option's name and the kind of error are enough.
    const char* kind = dynamic_cast<const po::unknown_option*>(&e)         ? "unknown option"
                       : dynamic_cast<const po::multiple_occurrences*>(&e) ? "given more than once"
                       : dynamic_cast<const po::validation_error*>(&e)     ? "invalid value"
                                                                           : "invalid use";
    throw config_error(std::string(kind) + ": " + e.get_option_name());
  } catch (const po::error& e) {
    throw config_error(e.what());
  }

  parse_result out;
  if (vm.count("help")) {
    std::ostringstream s;
    s << "herald: a real-time push server (WebSocket, Server-Sent Events, long polling)\n\n"
      << "usage: herald [options]\n\n"
      << desc << "\nEvery option can also be set as HERALD_<NAME> (e.g. HERALD_LISTEN, HERALD_API_KEY)\n"
      << "or as `name = value` in the --config file; flags win over the environment, which wins over the file.\n";
    out.output = s.str();
    return out;
  }
  if (vm.count("version")) {
    out.output = version_text;
    return out;
  }

  config c;
  {
    const auto listen = get<std::string>(vm, "listen");
    auto colon = listen.rfind(':');
    require(colon != std::string::npos && colon > 0, "listen", "expected HOST:PORT, got \"" + listen + "\"");
    c.host = listen.substr(0, colon);
    if (c.host.size() > 2 && c.host.front() == '[' && c.host.back() == ']')
      c.host = c.host.substr(1, c.host.size() - 2);
    if (c.host == "localhost") c.host = "127.0.0.1";
    boost::system::error_code ec;
    boost::asio::ip::make_address(c.host, ec);
    require(!ec, "listen", "host must be an IP address (or localhost), got \"" + c.host + "\"");
    auto port = parse_number(std::string_view(listen).substr(colon + 1), "listen port");
    require(port < 65536, "listen", "port must be 0-65535 (0: any free port)");
    c.port = static_cast<unsigned short>(port);
  }
  c.threads = get<unsigned>(vm, "threads");
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  require(c.threads <= 64, "threads", "at most 64");
  c.broker = get<std::string>(vm, "broker");
  if (c.broker != "memory") {
    try {
      c.redis.shards = broker::parse_redis_urls(c.broker);
    } catch (const std::invalid_argument& e) {
      throw config_error(std::string("invalid broker: ") + e.what() +
                         " (memory | redis://HOST:PORT[,redis://...] | sentinel://MASTER[,...])");
    }
    try {
      c.redis.sentinels = broker::parse_host_ports(get<std::string>(vm, "sentinels"), 26379);
    } catch (const std::invalid_argument& e) {
      throw config_error(std::string("invalid sentinels: ") + e.what() + " (HOST:PORT[,HOST:PORT...])");
    }
    const bool any_sentinel = std::any_of(c.redis.shards.begin(), c.redis.shards.end(),
                                          [](const broker::redis_endpoint& e) { return !e.master.empty(); });
    require(!any_sentinel || !c.redis.sentinels.empty(), "sentinels",
            "a sentinel:// shard needs at least one sentinel (--sentinels HOST:PORT)");
    c.redis.sentinel_poll = std::chrono::milliseconds(get<unsigned>(vm, "sentinel-poll"));
    require(c.redis.sentinel_poll.count() >= 50, "sentinel-poll", "at least 50 ms");
    c.redis.meta_ttl = std::chrono::seconds(get<unsigned>(vm, "redis-meta-ttl"));
    c.redis.command_timeout = std::chrono::milliseconds(get<unsigned>(vm, "redis-timeout"));
    require(c.redis.command_timeout.count() >= 100, "redis-timeout", "at least 100 ms");
  }

  core::namespace_options defaults;
  defaults.history_size = get<std::size_t>(vm, "history-size");
  defaults.history_ttl = std::chrono::seconds(get<unsigned>(vm, "history-ttl"));
  defaults.client_publish = get<bool>(vm, "client-publish");
  defaults.anonymous = get<bool>(vm, "anonymous");
  defaults.max_subscribers = get<std::size_t>(vm, "max-subscribers");
  require(defaults.history_size <= 1'000'000, "history-size", "at most 1000000");
  c.namespaces = core::namespace_table(defaults);
  if (vm.count("namespace"))
    for (const auto& spec : vm["namespace"].as<std::vector<std::string>>()) {
      auto [name, o] = parse_namespace(spec, defaults);
      require(o.history_size <= 1'000'000, "namespace " + name + " history_size", "at most 1000000");
      c.namespaces.set(name, o);
    }

  auto& t = c.transport;
  t.max_header_bytes = get<std::size_t>(vm, "max-header-size");
  t.max_body_bytes = get<std::size_t>(vm, "max-body-size");
  t.request_timeout = std::chrono::seconds(get<unsigned>(vm, "request-timeout"));
  t.keepalive_timeout = std::chrono::seconds(get<unsigned>(vm, "keepalive-timeout"));
  t.sse_heartbeat = std::chrono::seconds(get<unsigned>(vm, "sse-heartbeat"));
  t.sse_retry = std::chrono::milliseconds(get<unsigned>(vm, "sse-retry"));
  t.poll_timeout = std::chrono::seconds(get<unsigned>(vm, "poll-timeout"));
  t.poll_timeout_max = std::chrono::seconds(get<unsigned>(vm, "poll-timeout-max"));
  t.poll_limit = get<std::size_t>(vm, "poll-limit");
  t.poll_limit_max = get<std::size_t>(vm, "poll-limit-max");
  t.replay_limit = get<std::size_t>(vm, "replay-limit");
  t.max_queued_bytes = get<std::size_t>(vm, "max-queued-bytes");
  t.write_hold = std::chrono::milliseconds(get<unsigned>(vm, "write-hold-ms"));
  require(t.write_hold.count() <= 1000, "write-hold-ms", "at most 1000");
  t.max_channels_per_connection = get<std::size_t>(vm, "max-channels-per-connection");
  require(t.max_header_bytes >= 1024, "max-header-size", "at least 1024");
  require(t.request_timeout.count() > 0, "request-timeout", "must be positive");
  require(t.keepalive_timeout.count() > 0, "keepalive-timeout", "must be positive");
  require(t.sse_heartbeat.count() > 0, "sse-heartbeat", "must be positive");
  require(t.poll_limit > 0 && t.poll_limit <= t.poll_limit_max, "poll-limit", "must be 1..poll-limit-max");
  require(t.poll_timeout <= t.poll_timeout_max, "poll-timeout", "must not exceed poll-timeout-max");
  require(t.max_queued_bytes >= 4096, "max-queued-bytes", "at least 4096");
  require(t.max_channels_per_connection > 0 && t.max_channels_per_connection <= 40, "max-channels-per-connection",
          "must be 1..40 (a cursor of 40 channels fits the contract's 1 KiB)");
  t.tls_cert = get<std::string>(vm, "tls-cert");
  t.tls_key = get<std::string>(vm, "tls-key");
  t.tls_handshake_timeout = std::chrono::seconds(get<unsigned>(vm, "tls-handshake-timeout"));
  require(t.tls_cert.empty() == t.tls_key.empty(), t.tls_cert.empty() ? "tls-cert" : "tls-key",
          "--tls-cert and --tls-key go together");
  require(t.tls_handshake_timeout.count() > 0, "tls-handshake-timeout", "must be positive");
  if (!t.tls_cert.empty()) t.scheme = "https";
  t.ws_max_message = get<std::size_t>(vm, "ws-max-message");
  t.ws_ping_interval = std::chrono::seconds(get<unsigned>(vm, "ws-ping-interval"));
  t.ws_pong_timeout = std::chrono::seconds(get<unsigned>(vm, "ws-pong-timeout"));
  t.ws_deflate = get<bool>(vm, "ws-deflate");
  if (vm.count("allowed-origins")) t.allowed_origins = vm["allowed-origins"].as<std::vector<std::string>>();
  for (const auto& o : t.allowed_origins)
    require(o == "*" || (o.find("://") != std::string::npos && o.find('/', o.find("://") + 3) == std::string::npos),
            "allowed-origins", "\"" + o + "\" is not an origin (scheme://host[:port], no path) or *");
  t.cors_credentials = get<bool>(vm, "cors-credentials");
  t.max_connections_per_ip = get<std::size_t>(vm, "max-connections-per-ip");
  t.max_polls_per_ip = get<std::size_t>(vm, "max-polls-per-ip");
  t.ws_commands_per_second = get<unsigned>(vm, "ws-commands-per-second");
  require(t.ws_max_message >= 1024, "ws-max-message", "at least 1024");
  require(t.ws_ping_interval.count() > 0, "ws-ping-interval", "must be positive");
  require(t.ws_pong_timeout.count() > 0, "ws-pong-timeout", "must be positive");

  t.hooks = hook_options_from(vm);

  c.api.api_key = get<std::string>(vm, "api-key");
  c.api.web_root = get<std::string>(vm, "web-root");
  c.api.max_data_bytes = get<std::size_t>(vm, "max-message-size");
  c.api.history_limit_max = t.poll_limit_max;  // one cap for /api/history, WebSocket history and polls
  c.api.max_broadcast_channels = get<std::size_t>(vm, "max-broadcast-channels");
  require(c.api.max_data_bytes + 4096 <= t.max_body_bytes, "max-message-size",
          "must leave 4096 bytes of room under max-body-size");
  require(c.api.max_broadcast_channels > 0, "max-broadcast-channels", "must be positive");

  if (vm.count("token-key"))
    for (const auto& spec : vm["token-key"].as<std::vector<std::string>>()) {
      try {
        c.auth.keys.add(spec);
      } catch (const std::invalid_argument& e) {
        throw config_error(std::string("invalid token-key: ") + e.what());
      }
    }
  c.auth.policy.issuer = get<std::string>(vm, "token-issuer");
  c.auth.policy.audience = get<std::string>(vm, "token-audience");
  c.auth.policy.leeway = std::chrono::seconds(get<unsigned>(vm, "token-leeway"));
  c.auth.ticket_ttl = std::chrono::seconds(get<unsigned>(vm, "ticket-ttl"));
  require(c.auth.ticket_ttl.count() > 0 && c.auth.ticket_ttl.count() <= 3600, "ticket-ttl", "must be 1..3600");

  c.memory.max_channels = get<std::size_t>(vm, "max-channels");
  c.memory.idle_ttl = std::chrono::seconds(get<unsigned>(vm, "channel-idle-ttl"));
  c.sweep_interval = std::chrono::seconds(get<unsigned>(vm, "sweep-interval"));
  const double drain = get<double>(vm, "drain-seconds");
  require(drain >= 0 && drain <= 3600, "drain-seconds", "must be 0..3600");
  c.drain_window = std::chrono::milliseconds(static_cast<long long>(drain * 1000));
  require(c.sweep_interval.count() > 0, "sweep-interval", "must be positive");

  const auto log_level = get<std::string>(vm, "log-level");
  const auto lvl = util::log::parse_level(log_level);
  require(lvl.has_value(), "log-level", "expected debug, info, warn or error, got \"" + log_level + "\"");
  c.log_level = *lvl;
  const auto log_format = get<std::string>(vm, "log-format");
  const auto fmt = util::log::parse_format(log_format);
  require(fmt.has_value(), "log-format", "expected text or json, got \"" + log_format + "\"");
  c.log_format = *fmt;
  out.cfg = std::move(c);
  return out;
}

}  // namespace

parse_result parse(int argc, const char* const* argv, const std::vector<std::string>& env) {
  return parse_from(argc, argv, env, nullptr);
}

parse_result parse(int argc, const char* const* argv, const std::vector<std::string>& env, std::istream& file) {
  return parse_from(argc, argv, env, &file);
}

}  // namespace herald::config
