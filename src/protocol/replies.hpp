#pragma once
// The server's own wire forms, everything herald writes that is not a message: SSE
// signals and position lines, the long-poll and history replies around the shared
// message elements, WebSocket subscribe results and reset pushes, publish results.
// Built here only, so transports hold no JSON or SSE syntax of their own; checked byte
// for byte against tests/golden/ (docs/protocol.md shows the same forms).
//
// Pieces that wrap shared message bytes (the long-poll reply) come as head and tail, so
// the transport writes head, the shared elements and tail in one gather write.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/message.hpp"
#include "util/api_error.hpp"

namespace herald::protocol {

/// The contract's error body: {"error":{"code":..,"message":..}}.
std::string error_json(const util::api_error& e);

// --- Server-Sent Events ---------------------------------------------------------------

/// "retry: <ms>\n\n": the reconnect hint that opens a stream.
std::string sse_retry(std::int64_t ms);
/// "id: <cursor>\n\n": sets EventSource's lastEventId without firing an event.
std::string sse_position(std::string_view cursor);
/// "id: <cursor>\n": the id line of a multi-channel stream's event (its data is shared).
std::string sse_id_line(std::string_view cursor);
/// The reset event: history could not cover `channels`; live from `cursor` on.
std::string sse_reset(std::string_view cursor, std::span<const std::string> channels);
/// The token_expired event that ends a stream whose token expired.
std::string sse_token_expired(std::string_view cursor);

// --- Long polling and history ---------------------------------------------------------

/// {"messages":[ — then the messages' shared JSON elements, comma-separated.
inline constexpr std::string_view messages_head = "{\"messages\":[";
/// ],"cursor":..,"recovered":..[,"reset":[..]]} — `resets` empty: recovered.
std::string poll_reply_tail(std::string_view cursor, std::span<const std::string> resets);
/// A whole history reply: {"messages":[..],"cursor":..,"recovered":..}.
std::string history_reply(std::span<const message_ptr> messages, std::string_view cursor, bool recovered);

// --- WebSocket and publish ------------------------------------------------------------

/// The result of a subscribe command: {"channel":..,"recovered":..,"cursor":..}, with
/// ,"format":"raw" before the } for a raw subscription; `"ended":true` when the position is
/// at the stream's end (the subscription is over).
std::string ws_subscribed(std::string_view channel, bool recovered, std::string_view cursor, bool raw = false,
                          bool ended = false);
/// The reset push of a live subscription: {"reset":{"channel":..,"cursor":..}}.
std::string ws_reset(std::string_view channel, std::string_view cursor);
// --- Raw formats (docs/protocol.md "Raw formats") ----------------------------------

/// "id:<cursor>\n": the id line of a several-channel raw SSE event (its body is shared).
std::string sse_raw_id_line(std::string_view cursor);
/// The first line of a raw long-poll reply: "<cursor>\n", or
/// "<cursor> reset <channel> <channel>…\n" when history could not cover some channels,
/// then " end <channel>…" for the channels whose end (the stream's last message) the
/// reply holds.
std::string raw_poll_head(std::string_view cursor, std::span<const std::string> resets,
                          std::span<const std::string> ended = {});
/// The text frame that names the channel of the raw (binary) frames after it on a
/// WebSocket: {"channel":..}; with a cursor, {"channel":..,"cursor":..}: they count from it.
std::string ws_raw_channel(std::string_view channel, std::string_view cursor = {});

/// A publish's result: {"offset":N,"cursor":..} (API, /publish, WebSocket publish).
std::string publish_result(std::uint64_t offset, std::string_view cursor);
/// An ephemeral publish's result: {"ephemeral":true} (no offset, no cursor).
std::string ephemeral_result();
/// A stream's result (POST /api/stream, /api/stream/end):
/// {"channel":..,"offset":N,"cursor":..,"state":..}.
std::string stream_result(std::string_view channel, std::uint64_t offset, std::string_view cursor,
                          std::string_view state);

}  // namespace herald::protocol
