#include "metrics/metrics.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

namespace herald::metrics {
namespace {

constexpr auto n_counters = static_cast<std::size_t>(counter::count_);
constexpr auto n_gauges = static_cast<std::size_t>(gauge::count_);

struct alignas(64) slot {
  std::array<std::atomic<std::uint64_t>, n_counters> counters{};
  std::array<std::atomic<std::int64_t>, n_gauges> gauges{};
};

// One scrape-time computation and the gauges it fills.
struct callback_group {
  std::vector<gauge_info> gauges;
  std::function<std::vector<double>()> fn;
};

struct registry {
  std::mutex m;
  std::vector<std::unique_ptr<slot>> slots;  // never shrinks: a thread's slot outlives it
  std::vector<callback_group> callbacks;
};

registry& reg() {
  static registry* r = new registry;  // leaked on purpose: used until the last thread exits
  return *r;
}

slot& my_slot() {
  thread_local slot* s = [] {
    auto& r = reg();
    std::lock_guard lock(r.m);
    r.slots.push_back(std::make_unique<slot>());
    return r.slots.back().get();
  }();
  return *s;
}

struct descriptor {
  const char* name;
  const char* help;
  const char* labels;  // "" or `{transport="sse"}`
};

// Indexed by counter; several enumerators may share one metric name with labels.
constexpr std::array<descriptor, n_counters> counter_desc{{
    {"herald_publishes_total", "Messages accepted for publication.", ""},
    {"herald_publish_errors_total", "Publications refused.", ""},
    {"herald_deliveries_total", "Messages queued to subscribers.", "{transport=\"sse\"}"},
    {"herald_deliveries_total", "Messages queued to subscribers.", "{transport=\"poll\"}"},
    {"herald_deliveries_total", "Messages queued to subscribers.", "{transport=\"ws\"}"},
    {"herald_bytes_out_total", "Bytes written to client sockets.", ""},
    {"herald_bytes_in_total", "Bytes read from client sockets.", ""},
    {"herald_write_holds_total",
     "Streaming writes held (up to --write-hold-ms) because the peer had not acknowledged the "
     "previous one.",
     ""},
    {"herald_slow_disconnects_total",
     "Connections closed as slow readers: their outbound queue passed the byte cap, or a "
     "reply moved no byte within the request timeout.",
     ""},
    {"herald_drops_total", "Messages not delivered because their connection was closing or cut.", ""},
    {"herald_resets_total", "Subscriptions whose gap history could not cover.", ""},
    {"herald_sync_overflows_total",
     "Live messages not kept while their subscription synced (its pending list was full); "
     "they are re-read from history.",
     ""},
    {"herald_ephemeral_publishes_total", "Ephemeral messages accepted (live only: no offset, no history).", ""},
    {"herald_signals_delivered_total", "Ephemeral, join and leave messages queued to subscribers.", ""},
    {"herald_signal_drops_total",
     "Ephemeral, join and leave messages not queued because the connection's backlog (or long-poll reply) was "
     "full.",
     ""},
    {"herald_http_requests_total", "HTTP requests handled.", ""},
    {"herald_http_responses_total", "HTTP error replies.", "{class=\"4xx\"}"},
    {"herald_http_responses_total", "HTTP error replies.", "{class=\"5xx\"}"},
    {"herald_bad_connections_total", "Connections closed for unparseable input or exceeded limits.", ""},
    {"herald_accept_errors_total", "Failed accepts (e.g. out of file descriptors).", ""},
    {"herald_auth_refusals_total", "Requests refused by authentication or policy.", "{reason=\"credentials\"}"},
    {"herald_auth_refusals_total", "Requests refused by authentication or policy.", "{reason=\"forbidden\"}"},
    {"herald_auth_refusals_total", "Requests refused by authentication or policy.", "{reason=\"origin\"}"},
    {"herald_token_expiries_total", "Live connections ended because their token expired.", ""},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"connections_per_ip\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"polls_per_ip\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"channels_per_connection\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"commands_per_second\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"max_subscribers\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"message_size\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"header_size\"}"},
    {"herald_limit_refusals_total", "Refusals per configured limit.", "{limit=\"request_timeout\"}"},
    {"herald_internal_errors_total", "Exceptions that escaped an event-loop handler (bugs: see the log).", ""},
    {"herald_stream_ingests_total", "Stream ingests (POST /api/stream) started.", ""},
    {"herald_stream_stops_total", "Live stream ingests stopped (ended aborted).", ""},
    {"herald_stream_timeouts_total", "Stream ingests ended by the idle limit or the maximum duration.", ""},
    {"herald_tls_handshakes_total", "TLS handshakes per result.", "{result=\"ok\"}"},
    {"herald_tls_handshakes_total", "TLS handshakes per result.", "{result=\"timeout\"}"},
    {"herald_tls_handshakes_total", "TLS handshakes per result.", "{result=\"plain_http\"}"},
    {"herald_tls_handshakes_total", "TLS handshakes per result.", "{result=\"error\"}"},
    {"herald_h2_streams_total", "Requests received over HTTP/2.", ""},
    {"herald_h2_stream_resets_total", "HTTP/2 streams reset, by side.", "{by=\"client\"}"},
    {"herald_h2_stream_resets_total", "HTTP/2 streams reset, by side.", "{by=\"server\"}"},
    {"herald_h2_goaways_total", "HTTP/2 connections ended by herald with GOAWAY, per reason.", "{reason=\"flood\"}"},
    {"herald_h2_goaways_total", "HTTP/2 connections ended by herald with GOAWAY, per reason.",
     "{reason=\"protocol_error\"}"},
    {"herald_h2_goaways_total", "HTTP/2 connections ended by herald with GOAWAY, per reason.", "{reason=\"idle\"}"},
    {"herald_h2_goaways_total", "HTTP/2 connections ended by herald with GOAWAY, per reason.", "{reason=\"drain\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"connect\",result=\"allow\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"connect\",result=\"refuse\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"connect\",result=\"timeout\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"connect\",result=\"unavailable\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"connect\",result=\"bad_reply\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"connect\",result=\"overloaded\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"subscribe\",result=\"allow\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"subscribe\",result=\"refuse\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"subscribe\",result=\"timeout\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"subscribe\",result=\"unavailable\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"subscribe\",result=\"bad_reply\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"subscribe\",result=\"overloaded\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"publish\",result=\"allow\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"publish\",result=\"refuse\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"publish\",result=\"timeout\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"publish\",result=\"unavailable\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"publish\",result=\"bad_reply\"}"},
    {"herald_hook_requests_total", "Backend hook calls by outcome.", "{hook=\"publish\",result=\"overloaded\"}"},
    {"herald_hook_duration_microseconds_total", "Time from asking a backend hook to its answer (or failure), summed.",
     "{hook=\"connect\"}"},
    {"herald_hook_duration_microseconds_total", "Time from asking a backend hook to its answer (or failure), summed.",
     "{hook=\"subscribe\"}"},
    {"herald_hook_duration_microseconds_total", "Time from asking a backend hook to its answer (or failure), summed.",
     "{hook=\"publish\"}"},
}};

constexpr std::array<descriptor, n_gauges> gauge_desc{{
    {"herald_connections", "Open connections per transport.", "{transport=\"sse\"}"},
    {"herald_connections", "Open connections per transport.", "{transport=\"poll\"}"},
    {"herald_connections", "Open connections per transport.", "{transport=\"ws\"}"},
    {"herald_connections", "Open connections per transport.", "{transport=\"http\"}"},
    {"herald_connections", "Open connections per transport.", "{transport=\"h2\"}"},
}};

}  // namespace

void add(counter c, std::uint64_t n) noexcept {
  auto& a = my_slot().counters[static_cast<std::size_t>(c)];
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void move(gauge g, std::int64_t delta) noexcept {
  auto& a = my_slot().gauges[static_cast<std::size_t>(g)];
  a.store(a.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

std::uint64_t total(counter c) noexcept {
  auto& r = reg();
  std::lock_guard lock(r.m);
  std::uint64_t sum = 0;
  for (auto& s : r.slots) sum += s->counters[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  return sum;
}

std::int64_t total(gauge g) noexcept {
  auto& r = reg();
  std::lock_guard lock(r.m);
  std::int64_t sum = 0;
  for (auto& s : r.slots) sum += s->gauges[static_cast<std::size_t>(g)].load(std::memory_order_relaxed);
  return sum;
}

void register_callback_gauge(std::string name, std::string help, std::function<double()> fn) {
  register_callback_gauges({{std::move(name), std::move(help)}},
                           [fn = std::move(fn)] { return std::vector<double>{fn()}; });
}

void register_callback_gauges(std::vector<gauge_info> gauges, std::function<std::vector<double>()> fn) {
  auto& r = reg();
  std::lock_guard lock(r.m);
  r.callbacks.push_back({std::move(gauges), std::move(fn)});
}

std::string render_prometheus() {
  std::string out;
  auto emit = [&](const descriptor& d, const char* type, const std::string& value, const char* prev_name) {
    if (!prev_name || std::string_view(prev_name) != d.name) {
      out += "# HELP ";
      out += d.name;
      out += ' ';
      out += d.help;
      out += "\n# TYPE ";
      out += d.name;
      out += ' ';
      out += type;
      out += '\n';
    }
    out += d.name;
    out += d.labels;
    out += ' ';
    out += value;
    out += '\n';
  };
  const char* prev = nullptr;
  for (std::size_t i = 0; i < n_counters; ++i) {
    emit(counter_desc[i], "counter", std::to_string(total(static_cast<counter>(i))), prev);
    prev = counter_desc[i].name;
  }
  prev = nullptr;
  for (std::size_t i = 0; i < n_gauges; ++i) {
    emit(gauge_desc[i], "gauge", std::to_string(total(static_cast<gauge>(i))), prev);
    prev = gauge_desc[i].name;
  }
  std::vector<callback_group> callbacks;
  {
    auto& r = reg();
    std::lock_guard lock(r.m);
    callbacks = r.callbacks;
  }
  for (auto& cb : callbacks) {
    const auto values = cb.fn();  // once per group and scrape
    for (std::size_t i = 0; i < cb.gauges.size(); ++i) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", i < values.size() ? values[i] : 0.0);
      emit({cb.gauges[i].name.c_str(), cb.gauges[i].help.c_str(), ""}, "gauge", buf, nullptr);
    }
  }
  return out;
}

}  // namespace herald::metrics
