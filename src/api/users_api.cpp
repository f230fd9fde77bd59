// POST /api/disconnect, /api/subscribe, /api/unsubscribe: the backend acts on every live
// connection of a user (docs/presence.md "Users the backend can reach"), on this node
// through the user registry (core/user_registry.hpp) and on the others through the
// broker (user_command_remote; with Redis, the herald:ctl:user channel).
#include <atomic>

#include "api/api_handlers.hpp"
#include "core/user_registry.hpp"
#include "protocol/user_command.hpp"

namespace herald::api {

void handlers::user_command(const request& req, protocol::user_command::op what, std::function<void(response)> done) {
  auto parsed = protocol::parse_user_command(what, req.body);
  if (auto* err = std::get_if<util::api_error>(&parsed)) return done(error_response(*err));
  const auto& cmd = std::get<protocol::user_command>(parsed);
  struct gather {
    std::atomic<int> left{2};
    std::size_t connections = 0;
    bool others = false;
    std::function<void(response)> done;
    void finish() {
      if (left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      response r;
      r.body =
          "{\"connections\":" + std::to_string(connections) + ",\"other_nodes\":" + (others ? "true" : "false") + "}";
      done(std::move(r));
    }
  };
  auto g = std::make_shared<gather>();
  g->done = std::move(done);
  // Each side writes its own field before its finish(); the last finish reads both.
  ctx_.brokers.user_command_remote(protocol::user_command_json(cmd), [g](bool sent) {
    g->others = sent;
    g->finish();
  });
  if (!ctx_.users) {
    g->finish();
    return;
  }
  ctx_.users->apply(cmd, [g](std::size_t n) {
    g->connections = n;
    g->finish();
  });
}

}  // namespace herald::api
