#pragma once
// The JSON command protocol spoken over /ws (docs/protocol.md). Every client message is
// one JSON object with an "id" and a "method"; every command gets exactly one reply,
// {"id":..,"result":{..}} or {"id":..,"error":{"code":..,"message":..}}. Pushes are
// {"push":{..}} (built once per message, see message::ws_frame) and mid-stream resets
// {"reset":{"channel":..,"cursor":..}}; a subscription with "format":"raw" gets binary
// frames of the data alone instead (message::ws_raw_frame, transport/ws_raw_channels.hpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "util/api_error.hpp"

namespace herald::protocol {

enum class ws_method { subscribe, unsubscribe, publish, history, ping, stop, presence };

struct ws_command {
  std::string id;  // the request id as JSON text (number or string), echoed in the reply
  ws_method method = ws_method::ping;
  std::string channel;
  std::string since;        // subscribe, history: a cursor or empty
  std::string data_json;    // publish
  std::string event;        // publish
  bool ephemeral = false;   // publish: live only
  std::string reason;       // stop (empty: none)
  std::optional<std::uint64_t> expected_offset;  // publish
  std::size_t limit = 100;  // history, presence
  bool raw = false;         // subscribe: "format":"raw"
};

struct ws_command_error {
  std::string id;  // "null" when the id could not be read
  util::api_error error;
};

/// Parses one client message.
std::variant<ws_command, ws_command_error> parse_ws_command(std::string_view text, std::size_t max_data_bytes);

/// {"id":<id>,"result":<result_json>}
std::string ws_reply(std::string_view id, std::string_view result_json);
/// {"id":<id>,"error":{"code":..,"message":..}}
std::string ws_error_reply(std::string_view id, const util::api_error& e);

}  // namespace herald::protocol
