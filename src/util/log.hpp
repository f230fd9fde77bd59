#pragma once
// The operator's log: one line per event on stderr, `key=value` text by default or JSON
// lines (--log-format json), filtered by level (--log-level).
//
//   2026-12-03T06:00:00.123Z level=warn event=redis_down shard=0 addr=127.0.0.1:6379
//   {"ts":"2026-12-03T06:00:00.123Z","level":"warn","event":"redis_down","shard":0,...}
//
// Thread-safe: any thread may log; a line is formatted whole and written with one
// write(2), so lines of several threads never interleave. Values are escaped, so a
// client-chosen string (a channel name) cannot forge a line. Never log tokens, tickets,
// the API key or message data: log that something happened and whose it was (channel,
// address), not the secret.
//
// Events that a client can cause in floods (limit refusals, slow-reader cuts) go through
// the rate-limited calls: at most one line per kind per interval (10 s by default), the
// next one carrying `suppressed=N`, the count of those not written since.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace herald::util::log {

enum class level { debug, info, warn, error };
enum class format { text, json };

/// "debug", "info", "warn", "error" → level (nullopt for anything else).
std::optional<level> parse_level(std::string_view s);
/// "text", "json" → format.
std::optional<format> parse_format(std::string_view s);

/// One `key=value` of a line. Strings are escaped (quoted in text when they need it);
/// numbers and booleans are written bare (also in JSON).
class field {
 public:
  field(std::string_view key, std::string_view v) : key_(key), text_(v), kind_(kind::string) {}
  field(std::string_view key, const std::string& v) : field(key, std::string_view(v)) {}
  field(std::string_view key, const char* v) : field(key, std::string_view(v)) {}
  field(std::string_view key, bool v) : key_(key), owned_(v ? "true" : "false"), kind_(kind::bare) { text_ = owned_; }
  field(std::string_view key, double v);
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) field(std::string_view key, I v)
      : key_(key), owned_(std::to_string(v)), kind_(kind::bare) {
    text_ = owned_;
  }
  field(const field& o) : key_(o.key_), owned_(o.owned_), kind_(o.kind_) {
    text_ = kind_ == kind::string ? o.text_ : std::string_view(owned_);
  }
  field& operator=(const field&) = delete;

  std::string_view key() const noexcept { return key_; }
  std::string_view text() const noexcept { return text_; }
  bool bare() const noexcept { return kind_ == kind::bare; }

 private:
  enum class kind { string, bare };
  std::string_view key_;
  std::string owned_;  // numbers: their digits
  std::string_view text_;
  kind kind_;
};

using fields = std::initializer_list<field>;

struct options {
  level min_level = level::info;
  format fmt = format::text;
  std::chrono::milliseconds rate_interval{10000};  // of the rate-limited calls
  /// Where lines go (each with its '\n'); empty: stderr. For tests.
  std::function<void(std::string_view)> sink;
};

/// Sets the level, format and sink; call before the threads start (not synchronised
/// with concurrent logging beyond the level, which is atomic).
void configure(options o);
bool enabled(level l) noexcept;

/// Writes one line: `event` names what happened (snake_case, stable: operators grep and
/// alert on it), `f` its context.
void write(level l, std::string_view event, fields f = {});
inline void debug(std::string_view event, fields f = {}) { write(level::debug, event, f); }
inline void info(std::string_view event, fields f = {}) { write(level::info, event, f); }
inline void warn(std::string_view event, fields f = {}) { write(level::warn, event, f); }
inline void error(std::string_view event, fields f = {}) { write(level::error, event, f); }

/// Rate-limited: at most one line per (`event`, `kind`'s value) per interval; the next
/// line written carries `suppressed=N`. `kind` is written as the first field. Cheap when
/// suppressed (one mutex, no formatting).
void throttled(level l, std::string_view event, const field& kind, fields f = {});

/// A limit refused a client (`what`: the limit's name, as in
/// herald_limit_refusals_total{limit=...}, e.g. "polls_per_ip"). Rate-limited per `what`,
/// level warn, event=limit_refused. For the transports and the API.
inline void limit(std::string_view what, fields f = {}) {
  throttled(level::warn, "limit_refused", field("limit", what), f);
}
/// A connection cut because its queue passed --max-queued-bytes (`transport`: sse, ws,
/// poll). Rate-limited per transport, level warn, event=slow_reader_cut.
inline void slow_reader(std::string_view transport, fields f = {}) {
  throttled(level::warn, "slow_reader_cut", field("transport", transport), f);
}

/// Writes one line per rate-limited kind that has suppressed lines not yet reported
/// (at shutdown, so that no count is lost).
void flush_suppressed();

}  // namespace herald::util::log
