#pragma once
// Streams (docs/streams.md): the JSON bodies of POST /api/stream/end and
// POST /api/stream/stop (and client POST /stop), and the data of a stream's end message.
// Every failure is an api_error naming the offending field.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "util/api_error.hpp"

namespace herald::protocol {

/// The states a stream ends in (the end message's "state").
inline constexpr std::string_view state_completed = "completed";
inline constexpr std::string_view state_aborted = "aborted";
inline constexpr std::string_view state_error = "error";

/// A reason is kept short: it travels in every reader's end event.
inline constexpr std::size_t max_reason_bytes = 1024;

struct stream_end_fields {
  std::string channel;
  std::string state;   // completed | error
  std::string reason;  // empty: none
  std::optional<std::uint64_t> expected_offset;
};

/// Parses `{"channel":..,"state":"completed"|"error","reason"?:..,"expected_offset"?:N}`.
std::variant<stream_end_fields, util::api_error> parse_stream_end(std::string_view body);

struct stream_stop_fields {
  std::string channel;
  std::string reason;  // empty: none
};

/// Parses `{"channel":..,"reason"?:..}`.
std::variant<stream_stop_fields, util::api_error> parse_stream_stop(std::string_view body);

/// The end message's data: {"state":..,"reason":..} (reason null when empty).
std::string end_data_json(std::string_view state, std::string_view reason);

}  // namespace herald::protocol
