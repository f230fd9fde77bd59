// Leases in Redis (core::broker::lease): one key per lease, its value the holder, with a
// PEXPIRE. Taking and renewing is one script, so two nodes never both think they hold it.
#include <string>

#include <boost/asio/post.hpp>
#include <hiredis/hiredis.h>

#include "broker/redis/redis_broker.hpp"

namespace herald::broker {

namespace net = boost::asio;

namespace {

// KEYS[1] the lease; ARGV[1] the holder, ARGV[2] the ttl in ms. 1: held by ARGV[1] now.
constexpr const char* lease_script = R"LUA(
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
)LUA";

// KEYS[1] the lease; ARGV[1] the holder.
constexpr const char* release_script = R"LUA(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
)LUA";

std::string lease_key(const std::string& k) { return "herald:lease:" + k; }

}  // namespace

void redis_broker::eval_on(std::size_t shard, const char* script, const std::string& sha, std::vector<std::string> tail,
                           std::function<void(redisReply*)> fn) {
  // EVALSHA, falling back to EVAL (which caches the script) after a Redis restart.
  std::vector<std::string> cmd{"EVALSHA", sha};
  cmd.insert(cmd.end(), tail.begin(), tail.end());
  command_on(shard, std::move(cmd), [this, shard, script, tail = std::move(tail), fn = std::move(fn)](redisReply* r) mutable {
    if (r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
      std::vector<std::string> full{"EVAL", script};
      full.insert(full.end(), tail.begin(), tail.end());
      return command_on(shard, std::move(full), std::move(fn));
    }
    fn(r);
  });
}

void redis_broker::lease(std::string key, std::string holder, std::chrono::milliseconds ttl,
                         std::function<void(lease_result)> done) {
  net::post(ioc_, [this, key = std::move(key), holder = std::move(holder), ttl, done = std::move(done)]() mutable {
    static const std::string sha = script_sha(lease_script);
    const auto shard = shard_index(key);
    if (!usable(*shards_[shard])) return done(util::api_error{503, "unavailable", "the broker (Redis) is not reachable"});
    eval_on(shard, lease_script, sha,
            {"1", lease_key(key), std::move(holder), std::to_string(std::max<long long>(1, ttl.count()))},
            [done = std::move(done)](redisReply* r) {
              if (!r || r->type != REDIS_REPLY_INTEGER)
                return done(util::api_error{503, "unavailable", "the broker (Redis) is not reachable"});
              done(r->integer == 1);
            });
  });
}

void redis_broker::release_lease(std::string key, std::string holder) {
  net::post(ioc_, [this, key = std::move(key), holder = std::move(holder)]() mutable {
    static const std::string sha = script_sha(release_script);
    if (stopping_) return;
    eval_on(shard_index(key), release_script, sha, {"1", lease_key(key), std::move(holder)}, [](redisReply*) {});
  });
}

}  // namespace herald::broker
