// GET /api/presence?channel=C[&limit=N]: who is subscribed to C (core/presence.hpp), on
// every node with the Redis broker (broker/redis/redis_presence.hpp).
#include "api/api_handlers.hpp"
#include "core/presence.hpp"
#include "protocol/channel_name.hpp"
#include "util/parse_decimal.hpp"

namespace herald::api {

using util::bad_request;

void handlers::presence(const request& req, std::function<void(response)> done) {
  auto param = [&](std::string_view key) -> std::optional<std::string> {
    auto it = req.params.find(key);
    if (it == req.params.end()) return std::nullopt;
    return std::string((*it).value);
  };
  auto channel = param("channel");
  if (!channel) return done(error_response(bad_request("bad_request", "missing parameter channel")));
  if (!protocol::valid_channel_name(*channel))
    return done(
        error_response(bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])")));
  if (!ctx_.presence || !ctx_.namespaces.for_channel(*channel).presence)
    return done(error_response(core::presence_disabled(*channel)));
  std::size_t limit = core::presence_limit_default;
  if (auto l = param("limit")) {
    auto n = util::parse_decimal(*l, util::query_integer_max);
    if (!n) return done(error_response(bad_request("bad_request", "limit must be a non-negative integer")));
    limit = static_cast<std::size_t>(std::min<std::uint64_t>(*n, core::presence_limit_max));
  }
  // A channel nobody is subscribed to is not an error: it has nobody present. With Redis
  // the answer is every node's, read there (done on the broker thread).
  ctx_.presence->shared_snapshot(*channel, limit, [done = std::move(done)](core::presence_mirror::snapshot_result r) {
    if (auto* err = std::get_if<util::api_error>(&r)) return done(error_response(*err));
    response ok;
    ok.body = core::presence_registry::to_json(std::get<core::presence_snapshot>(r));
    done(std::move(ok));
  });
}

}  // namespace herald::api
