#pragma once
// What the backend asks of a user's live connections (POST /api/disconnect,
// /api/subscribe, /api/unsubscribe; docs/presence.md "Users the backend can reach"), and
// its form between nodes (a JSON object on the Redis control channel herald:ctl:user).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "util/api_error.hpp"

namespace herald::protocol {

/// Close codes of a disconnect from the backend (docs/protocol.md "Close codes").
inline constexpr std::uint16_t disconnect_reconnect = 4005;  // "reconnect": true
inline constexpr std::uint16_t disconnect_final = 4105;      // the default: do not reconnect

struct user_command {
  enum class op : std::uint8_t { disconnect, subscribe, unsubscribe };
  op what = op::disconnect;
  std::string user;
  std::string channel;                    // subscribe, unsubscribe
  std::uint16_t code = disconnect_final;  // disconnect
  std::string reason;                     // disconnect
  /// Whether the code tells the client to reconnect (4000-4099).
  bool reconnect() const noexcept { return code < 4100; }
};

/// The API bodies: {"user":…,"code"?:4000-4999,"reason"?:…,"reconnect"?:bool} for a
/// disconnect, {"user":…,"channel":…} for the others. Refusals: 400 bad_json,
/// bad_request, invalid_channel.
std::variant<user_command, util::api_error> parse_user_command(user_command::op what, std::string_view body);

/// What a connection is told. SSE: `event: disconnect` with
/// {"code":N,"reason":…,"reconnect":bool}, and `event: resubscribe` with
/// {"subscribe":CH} or {"unsubscribe":CH}, before the stream ends. WebSocket (a server
/// unsubscribe): {"unsubscribed":{"channel":CH}}.
std::string sse_disconnect_event(const user_command& c);
std::string sse_resubscribe_event(const user_command& c);
std::string ws_unsubscribed_push(std::string_view channel);

/// The form between nodes, and back (nullopt: not one).
std::string user_command_json(const user_command& c);
std::optional<user_command> user_command_from_json(std::string_view text);

}  // namespace herald::protocol
