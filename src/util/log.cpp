#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace herald::util::log {
namespace {

struct throttle_state {
  std::int64_t window_start_ms = 0;
  std::uint64_t suppressed = 0;
  level lvl = level::warn;
  std::string event, kind_key, kind_value;  // to report a count at flush_suppressed()
};

struct logger {
  std::atomic<int> min_level{static_cast<int>(level::info)};
  format fmt = format::text;
  std::chrono::milliseconds interval{10000};
  std::function<void(std::string_view)> sink;
  std::mutex m;  // the output and the throttle table
  std::unordered_map<std::string, throttle_state> throttles;
};

logger& the() {
  static logger* l = new logger;  // leaked on purpose: threads may log during exit
  return *l;
}

const char* level_name(level l) {
  switch (l) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "info";
}

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t steady_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// RFC 3339, UTC, milliseconds: 2026-12-03T06:00:00.123Z
void timestamp(std::string& out) {
  const auto ms = now_ms();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  out.append(buf, static_cast<std::size_t>(n));
}

void hex_escape(std::string& out, unsigned char c) {
  static const char* hex = "0123456789abcdef";
  out += "\\u00";
  out += hex[c >> 4];
  out += hex[c & 15];
}

// JSON string contents (also used for quoted text values: the same escapes).
void escape(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          hex_escape(out, c);
        else
          out += static_cast<char>(c);
    }
  }
}

bool needs_quotes(std::string_view s) {
  if (s.empty()) return true;
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  return false;
}

void append_field(std::string& out, format fmt, std::string_view key, std::string_view value, bool bare) {
  if (fmt == format::json) {
    out += ",\"";
    escape(out, key);
    out += "\":";
    if (bare) {
      out += value;
    } else {
      out += '"';
      escape(out, value);
      out += '"';
    }
    return;
  }
  out += ' ';
  out += key;
  out += '=';
  if (bare || !needs_quotes(value)) {
    out += value;
  } else {
    out += '"';
    escape(out, value);
    out += '"';
  }
}

std::string format_line(format fmt, level l, std::string_view event, const field* kind, fields f,
                        std::uint64_t suppressed) {
  std::string out;
  out.reserve(128);
  if (fmt == format::json) {
    out += "{\"ts\":\"";
    timestamp(out);
    out += "\",\"level\":\"";
    out += level_name(l);
    out += "\",\"event\":\"";
    escape(out, event);
    out += '"';
  } else {
    timestamp(out);
    out += " level=";
    out += level_name(l);
    out += " event=";
    out += event;
  }
  if (kind) append_field(out, fmt, kind->key(), kind->text(), kind->bare());
  for (const auto& x : f) append_field(out, fmt, x.key(), x.text(), x.bare());
  if (suppressed) append_field(out, fmt, "suppressed", std::to_string(suppressed), true);
  if (fmt == format::json) out += '}';
  out += '\n';
  return out;
}

// Under the logger's mutex.
void emit(logger& lg, std::string_view line) {
  if (lg.sink) return lg.sink(line);
  // One write(2) per line (stderr is unbuffered anyway): lines never interleave.
  while (!line.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to: not a reason to stop serving
    line.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

field::field(std::string_view key, double v) : key_(key), kind_(kind::bare) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  owned_.assign(buf, ec == std::errc{} ? p : buf);
  if (owned_.empty() || owned_ == "inf" || owned_ == "-inf" || owned_ == "nan" || owned_ == "-nan") {
    owned_ = "\"" + owned_ + "\"";  // keeps a JSON line valid
  }
  text_ = owned_;
}

std::optional<level> parse_level(std::string_view s) {
  if (s == "debug") return level::debug;
  if (s == "info") return level::info;
  if (s == "warn") return level::warn;
  if (s == "error") return level::error;
  return std::nullopt;
}

std::optional<format> parse_format(std::string_view s) {
  if (s == "text") return format::text;
  if (s == "json") return format::json;
  return std::nullopt;
}

void configure(options o) {
  auto& lg = the();
  std::lock_guard lock(lg.m);
  lg.min_level.store(static_cast<int>(o.min_level), std::memory_order_relaxed);
  lg.fmt = o.fmt;
  lg.interval = o.rate_interval;
  lg.sink = std::move(o.sink);
  lg.throttles.clear();
}

bool enabled(level l) noexcept { return static_cast<int>(l) >= the().min_level.load(std::memory_order_relaxed); }

void write(level l, std::string_view event, fields f) {
  if (!enabled(l)) return;
  auto& lg = the();
  try {
    std::lock_guard lock(lg.m);
    emit(lg, format_line(lg.fmt, l, event, nullptr, f, 0));
  } catch (...) {
    // Out of memory while logging: drop the line, never the connection or the process.
  }
}

void throttled(level l, std::string_view event, const field& kind, fields f) {
  if (!enabled(l)) return;
  auto& lg = the();
  try {
    std::string key;
    key.reserve(event.size() + 1 + kind.text().size());
    key.append(event).append(1, '\0').append(kind.text());
    const auto now = steady_now_ms();
    std::lock_guard lock(lg.m);
    auto [it, fresh] = lg.throttles.try_emplace(std::move(key));
    auto& st = it->second;
    if (!fresh && now - st.window_start_ms < lg.interval.count()) {
      ++st.suppressed;
      return;
    }
    if (fresh) {
      st.lvl = l;
      st.event = event;
      st.kind_key = kind.key();
      st.kind_value = kind.text();
    }
    st.window_start_ms = now;
    const auto suppressed = std::exchange(st.suppressed, 0);
    emit(lg, format_line(lg.fmt, l, event, &kind, f, suppressed));
  } catch (...) {
    // As in write().
  }
}

void flush_suppressed() {
  auto& lg = the();
  try {
    std::lock_guard lock(lg.m);
    for (auto& [_, st] : lg.throttles) {
      if (!st.suppressed) continue;
      const field kind(st.kind_key, st.kind_value);
      emit(lg, format_line(lg.fmt, st.lvl, st.event, &kind, {}, std::exchange(st.suppressed, 0)));
    }
  } catch (...) {
  }
}

}  // namespace herald::util::log
