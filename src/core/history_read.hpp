#pragma once
// A client's history read of one channel (GET /api/history, the WebSocket history
// command): the position its cursor names, and the reply (protocol/replies.hpp).
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/broker.hpp"

namespace herald::core {

/// The position `token` names for `channel`: a 400 bad_cursor when the token is
/// malformed or does not cover the channel.
std::variant<position, util::api_error> cursor_position(std::string_view token, std::string_view channel);

/// {"messages":[..],"cursor":"..","recovered":bool}: the cursor is after the last
/// message returned, else the `since` position when recovered, else the channel's top.
std::string history_json(std::string_view channel, const history_reply& reply, const std::optional<position>& since);

}  // namespace herald::core
