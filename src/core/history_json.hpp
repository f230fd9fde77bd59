#pragma once
// The history reply shared by GET /api/history and the WebSocket history command, and
// the lookup of one channel's position in a cursor.
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
