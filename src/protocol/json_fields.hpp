#pragma once
// Decoding of the JSON request bodies that carry a publication
// (`POST /api/publish`, `POST /api/broadcast`, `POST /publish`).
// Every failure is an api_error naming the offending field.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/json_text.hpp"
#include "util/api_error.hpp"

namespace herald::protocol {

struct publish_fields {
  std::vector<std::string> channels;  // one for publish, one or more for broadcast
  std::string event;                  // empty when absent
  std::string data_json;              // compact JSON
  std::optional<std::uint64_t> expected_offset;  // "expected_offset" (publish only)
  bool ephemeral = false;             // "ephemeral":true: live only (no offset, no history)
};

/// Parses `{"channel":..,"data":..,"event"?:..}` (broadcast=false) or
/// `{"channels":[..],"data":..,"event"?:..}` (broadcast=true); a publish may add
/// `"expected_offset":N` (a positive integer), a broadcast may not.
/// Channel names and the event name are validated; `data` must be present and
/// its compact form at most `max_data_bytes`; it is kept as written (json_text.hpp).
/// A field given twice is refused.
std::variant<publish_fields, util::api_error> parse_publish(std::string_view body, bool broadcast,
                                                            std::size_t max_data_bytes,
                                                            std::size_t max_broadcast_channels);

/// The optional "ephemeral" member: true, false or null (absent: false); anything else
/// is refused.
std::optional<util::api_error> parse_ephemeral(const std::vector<json_member>& members, bool& ephemeral);

/// A message's `data` as published (`value`: the text of a valid JSON value) without the
/// whitespace outside its strings, or the refusal of data over the limit.
std::variant<std::string, util::api_error> message_data_json(std::string_view value, std::size_t max_data_bytes);

/// True for a valid SSE event name: [A-Za-z0-9_-]{1,64}, except "reset",
/// "token_expired", "end", "join" and "leave" (the server's; a stream's end goes through
/// its own call).
bool valid_event_name(std::string_view name) noexcept;

}  // namespace herald::protocol
