// GET /api/presence?channel=C[&limit=N]: who is subscribed to C (core/presence.hpp).
#include "api/api_handlers.hpp"
#include "core/presence.hpp"
#include "protocol/channel_name.hpp"
#include "util/parse_decimal.hpp"

namespace herald::api {

using util::bad_request;

response handlers::presence(const request& req) {
  auto param = [&](std::string_view key) -> std::optional<std::string> {
    auto it = req.params.find(key);
    if (it == req.params.end()) return std::nullopt;
    return std::string((*it).value);
  };
  auto channel = param("channel");
  if (!channel) return error_response(bad_request("bad_request", "missing parameter channel"));
  if (!protocol::valid_channel_name(*channel))
    return error_response(bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])"));
  if (!ctx_.presence || !ctx_.namespaces.for_channel(*channel).presence)
    return error_response(core::presence_disabled(*channel));
  std::size_t limit = core::presence_limit_default;
  if (auto l = param("limit")) {
    auto n = util::parse_decimal(*l, util::query_integer_max);
    if (!n) return error_response(bad_request("bad_request", "limit must be a non-negative integer"));
    limit = static_cast<std::size_t>(std::min<std::uint64_t>(*n, core::presence_limit_max));
  }
  // A channel nobody is subscribed to is not an error: it has nobody present.
  response r;
  r.body = core::presence_registry::to_json(ctx_.presence->snapshot(*channel, limit));
  return r;
}

}  // namespace herald::api
