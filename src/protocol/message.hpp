#pragma once
// A published message, immutable once built, shared by history and every subscriber.
//
// Encode once, send many: the canonical JSON element is built when the message is made;
// each wire form (the SSE event bytes) is built at most once, on first use, and shared
// by every subscriber on every thread.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace herald::protocol {

/// What a message is. A publication has an offset, is kept in history and moves cursors;
/// the others are signals: live only, offset 0, no cursor, never in history
/// (docs/protocol.md, "Signals").
enum class message_kind : std::uint8_t { publication, ephemeral, join, leave };

class message {
 public:
  /// `data_json` must be compact serialized JSON (no raw newlines);
  /// `event` is empty or a valid event name.
  message(std::string channel, std::uint64_t offset, std::uint32_t epoch, std::int64_t time_ms, std::string event,
          std::string_view data_json);
  /// A signal (`kind` is not publication). ephemeral: `body_json` is the message's data,
  /// as for a publication. join, leave: `body_json` is the compact JSON object of who
  /// joined or left ({"user":..,"client":..,"transport":..}); `event` is ignored.
  message(message_kind kind, std::string channel, std::int64_t time_ms, std::string event, std::string_view body_json);

  message_kind kind() const noexcept { return kind_; }
  /// Not a publication: no offset, no cursor, not in history.
  bool is_signal() const noexcept { return kind_ != message_kind::publication; }

  const std::string& channel() const noexcept { return channel_; }
  /// channel_tag(channel()), computed once (subscribers match channels by it).
  std::uint32_t channel_tag() const noexcept { return tag_; }
  std::uint64_t offset() const noexcept { return offset_; }
  std::uint32_t epoch() const noexcept { return epoch_; }
  std::int64_t time_ms() const noexcept { return time_ms_; }
  const std::string& event() const noexcept { return event_; }

  /// {"channel":..,"offset":..,"time":..[,"event":..],"data":..}
  /// ephemeral: {"channel":..,"time":..,"ephemeral":true[,"event":..],"data":..}
  /// join / leave: {"join":{"channel":..,<body>}} / {"leave":{...}}
  const std::string& json() const noexcept { return json_; }
  /// The `data` value alone, as JSON text (a view into json()); for join and leave, the
  /// inner object {"channel":..,"user":..,...}.
  std::string_view data_json() const noexcept;

  /// join / leave: the connection id the event names ("client"), empty otherwise (a
  /// subscriber skips its own join by it).
  std::string_view signal_client() const noexcept { return std::string_view(json_).substr(client_pos_, client_len_); }

  /// The single-channel cursor positioned just after this message (empty for a signal).
  const std::string& cursor() const noexcept { return cursor_; }

  /// The complete SSE event for a subscriber of this channel alone:
  /// "id: <cursor>\n[event: <name>\n]data: <json>\n\n". Built once, thread-safe.
  /// A signal has no id line (the client's Last-Event-ID stays where it was):
  /// ephemeral "[event: <name>\n]data: <json>\n\n", join "event: join\ndata: <inner>\n\n".
  std::string_view sse_event() const;
  /// The same event without its id line, for subscribers whose cursor spans
  /// several channels (they write their own id line before it).
  std::string_view sse_body() const;

  /// The WebSocket push frame, {"push":{...message fields...,"cursor":".."}}, whole and
  /// unmasked; `deflated`: its permessage-deflate form (compressed once, shared).
  /// ephemeral: {"push":<json>} without a cursor; join / leave: <json>.
  std::string_view ws_frame(bool deflated) const;

  // The raw wire forms (format=raw, docs/protocol.md "Raw formats"): the data and only
  // what exact resume needs. Each is built at most once, on first use, and shared.

  /// The compact single-channel cursor after this message (cursor.hpp).
  const std::string& compact_cursor() const;
  /// A one-channel raw SSE event: "id:<compact cursor>\n[event:<name>\n]data:<data>\n\n".
  std::string_view sse_raw_event() const;
  /// A several-channel raw SSE event without its id line:
  /// "[event:<name>\n]data:<channel>\ndata:<data>\n\n".
  std::string_view sse_raw_body() const;
  /// The raw WebSocket frame: binary, its payload the data alone; `deflated`: compressed.
  std::string_view ws_raw_frame(bool deflated) const;
  /// A raw long-poll line: "<data>\n", or "<channel> <data>\n" with `with_channel`.
  std::string_view raw_line(bool with_channel) const;
  /// The raw long-poll line of a message with an event name: "!<message JSON>\n" (its
  /// name kept, its channel and offset with it; "!" starts no JSON value nor channel name).
  std::string_view raw_named_line() const;

  /// Approximate bytes held by this message (history accounting).
  std::size_t footprint() const noexcept;

 private:
  void build_sse() const;
  struct raw_forms {
    std::once_flag cursor_once, sse_once, sse_body_once, ws_once, ws_deflated_once, line_once, named_once;
    std::string cursor, sse, sse_body, ws, ws_deflated, line, named;
  };
  raw_forms& raw() const;

  std::string channel_;
  std::uint32_t tag_;
  std::uint64_t offset_;
  std::uint32_t epoch_;
  message_kind kind_ = message_kind::publication;
  std::int64_t time_ms_;
  std::string event_;
  std::string json_;
  std::uint32_t data_pos_ = 0;
  std::uint32_t client_pos_ = 0, client_len_ = 0;  // join / leave: the "client" value
  std::string cursor_;
  mutable std::once_flag sse_once_;
  mutable std::string sse_;
  mutable std::uint32_t sse_body_pos_ = 0;
  mutable std::once_flag ws_once_;
  mutable std::string ws_;
  mutable std::once_flag ws_deflated_once_;
  mutable std::string ws_deflated_;
  // Allocated on the first raw use only: a message no raw subscriber sees pays 16 bytes.
  mutable std::once_flag raw_once_;
  mutable std::unique_ptr<raw_forms> raw_;
};

using message_ptr = std::shared_ptr<const message>;

}  // namespace herald::protocol
