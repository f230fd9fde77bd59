// The users API between nodes (docs/presence.md "Users the backend can reach"): a
// command for a user's connections is applied by the node that got it, and PUBLISHed on
// herald:ctl:user (shard 0) for every other node. Each node is subscribed to that
// channel on shard 0's Pub/Sub connection for the broker's life; a node ignores its own
// messages by the id they start with.
#include <hiredis/hiredis.h>

#include <boost/asio/post.hpp>
#include <random>

#include "broker/redis/redis_broker.hpp"
#include "broker/redis/redis_broker_shard.hpp"
#include "broker/redis/redis_connection.hpp"
#include "broker/redis/redis_scripts.hpp"

namespace herald::broker {

std::string redis_broker::new_node_id() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i)
    for (std::uint32_t r = rd(), k = 0; k < 4; ++k, r >>= 8) id += hex[r & 15];
  return id;
}

void redis_broker::user_command_remote(const std::string& payload, std::function<void(bool)> done) {
  net::post(ioc_, [this, payload, done = std::move(done)]() mutable {
    auto& s0 = *shards_.front();
    if (!s0.cmd || !s0.cmd->connected()) return done(false);
    s0.cmd->command({"PUBLISH", redis_scripts::control_user, node_id_ + " " + payload},
                    [done = std::move(done)](redisReply* r) { done(r && r->type == REDIS_REPLY_INTEGER); });
  });
}

void redis_broker::on_user_control(redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      std::string_view(r->element[0]->str, r->element[0]->len) != "message" ||
      r->element[2]->type != REDIS_REPLY_STRING || !listener_)
    return;
  const std::string_view payload(r->element[2]->str, r->element[2]->len);
  const auto sp = payload.find(' ');
  if (sp == std::string_view::npos || payload.substr(0, sp) == node_id_) return;
  listener_->on_user_command(std::string(payload.substr(sp + 1)));
}

}  // namespace herald::broker
