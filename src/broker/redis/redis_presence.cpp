#include "broker/redis/redis_presence.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/post.hpp>

#include "broker/redis/redis_broker.hpp"
#include "broker/redis/redis_signals.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace herald::broker {

namespace net = boost::asio;

namespace {

// KEYS pc pu pa pn; ARGV client user transport node announce pubsub payload.
// Anonymous connections only count per node; an identified one is added once (HSETNX).
const char* const enter_script = R"lua(
if ARGV[2] == '' then
  redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
  return 0
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3] .. ' ' .. ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[4], ARGV[1])
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if n == 1 and ARGV[5] == '1' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
return n
)lua";

// KEYS pc pu pa pn; ARGV client user node announce pubsub payload.
const char* const exit_script = R"lua(
if ARGV[2] == '' then
  if redis.call('HINCRBY', KEYS[3], ARGV[3], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[3]) end
  return 0
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[4], ARGV[1])
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  if ARGV[4] == '1' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
end
return n
)lua";

// A dead node's entries in one channel. KEYS pc pu pa pn(dead); ARGV node announce pubsub time.
const char* const reap_script = R"lua(
local gone = redis.call('SMEMBERS', KEYS[4])
for _, c in ipairs(gone) do
  local v = redis.call('HGET', KEYS[1], c)
  if v then
    redis.call('HDEL', KEYS[1], c)
    local sp = string.find(v, ' ', 1, true)
    local t, user = string.sub(v, 1, sp - 1), string.sub(v, sp + 1)
    local n = redis.call('HINCRBY', KEYS[2], user, -1)
    if n <= 0 then
      redis.call('HDEL', KEYS[2], user)
      if ARGV[2] == '1' then
        redis.call('PUBLISH', ARGV[3], 's l ' .. ARGV[4] .. ' . {"user":' .. cjson.encode(user) ..
          ',"client":' .. cjson.encode(c) .. ',"transport":"' .. t .. '"}')
      end
    end
  end
end
redis.call('DEL', KEYS[4])
redis.call('HDEL', KEYS[3], ARGV[1])
return #gone
)lua";

// KEYS pc pu pa; ARGV limit. Counts in O(1) (plus one field per node for anonymous
// connections); at most `limit` entries listed, HSCAN rounds bounded.
const char* const snapshot_script = R"lua(
local out, seen = {}, {}
local limit = tonumber(ARGV[1])
local cursor, rounds = '0', 0
if limit > 0 then
  repeat
    local r = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 256)
    cursor = r[1]
    for i = 1, #r[2], 2 do
      if #out < limit * 2 and not seen[r[2][i]] then
        seen[r[2][i]] = true
        out[#out + 1] = r[2][i]
        out[#out + 1] = r[2][i + 1]
      end
    end
    rounds = rounds + 1
  until cursor == '0' or #out >= limit * 2 or rounds >= 64
end
local anon = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do anon = anon + tonumber(v) end
return {redis.call('HLEN', KEYS[2]), redis.call('HLEN', KEYS[1]), anon, out}
)lua";

// This node's entries put back after a Redis restart, announcing nothing.
// KEYS pc pu pa pn; ARGV node anonymous|'' then (client, user, transport)...
const char* const rebuild_script = R"lua(
if ARGV[2] ~= '' then
  if tonumber(ARGV[2]) > 0 then redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) else redis.call('HDEL', KEYS[3], ARGV[1]) end
end
local added = 0
for i = 3, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 2] .. ' ' .. ARGV[i + 1]) == 1 then
    redis.call('SADD', KEYS[4], ARGV[i])
    redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1)
    added = added + 1
  end
end
return added
)lua";

enum { s_enter, s_exit, s_reap, s_snapshot, s_rebuild, s_count };
const char* const scripts[s_count] = {enter_script, exit_script, reap_script, snapshot_script, rebuild_script};

std::string key(const std::string& c, std::string_view suffix) { return "herald:{" + c + "}:" + std::string(suffix); }
std::vector<std::string> channel_keys(const std::string& c, std::string_view node) {
  return {key(c, "pc"), key(c, "pu"), key(c, "pa"), key(c, "pn:" + std::string(node))};
}
std::string pubsub_name(const std::string& c) { return "herald:p:" + c; }
const std::string nodes_key = "herald:nodes";
std::string node_key(std::string_view n) { return "herald:node:" + std::string(n); }
std::string node_channels_key(std::string_view n) { return "herald:node:" + std::string(n) + ":ch"; }

std::string_view str(const redisReply* r) { return {r->str, r->len}; }

core::transport transport_from(std::string_view t) {
  if (t == "sse") return core::transport::sse;
  if (t == "poll") return core::transport::poll;
  return core::transport::ws;
}

// The Pub/Sub payload of a join or leave (redis_signals.hpp).
std::string who_payload(protocol::message_kind kind, const std::string& channel, const std::string& client,
                        const std::string& user, core::transport t) {
  return signal_payload(
      protocol::message(kind, channel, util::unix_ms(), std::string(), core::who_json(user, client, t)));
}

constexpr std::size_t rebuild_batch = 256;

}  // namespace

redis_presence::redis_presence(redis_broker& broker, core::presence_registry& local)
    : broker_(broker), local_(local), node_(local.node_id()), timer_(broker.io()) {
  for (int i = 0; i < s_count; ++i) sha_[i] = redis_broker::script_sha(scripts[i]);
}

void redis_presence::eval(std::size_t shard, int script, std::vector<std::string> keys, std::vector<std::string> args,
                          std::function<void(redisReply*)> fn) {
  std::vector<std::string> tail{std::to_string(keys.size())};
  tail.insert(tail.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
  tail.insert(tail.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  broker_.eval_on(shard, scripts[script], sha_[script], std::move(tail), std::move(fn));
}

void redis_presence::entered(const std::string& channel, const std::string& client, const std::string& user,
                             core::transport kind, bool announce, bool first_here) {
  std::vector<std::string> args{
      client,
      user,
      std::string(core::transport_name(kind)),
      node_,
      announce ? "1" : "0",
      pubsub_name(channel),
      user.empty() ? std::string() : who_payload(protocol::message_kind::join, channel, client, user, kind)};
  net::post(broker_.io(), [this, channel, first_here, args = std::move(args)]() mutable {
    if (stopped_) return;
    if (first_here) broker_.command_on(0, {"SADD", node_channels_key(node_), channel}, [](redisReply*) {});
    eval(broker_.shard_index(channel), s_enter, channel_keys(channel, node_), std::move(args), [](redisReply*) {});
  });
}

void redis_presence::exited(const std::string& channel, const std::string& client, const std::string& user,
                            core::transport kind, bool announce, bool last_here) {
  std::vector<std::string> args{
      client,
      user,
      node_,
      announce ? "1" : "0",
      pubsub_name(channel),
      user.empty() ? std::string() : who_payload(protocol::message_kind::leave, channel, client, user, kind)};
  net::post(broker_.io(), [this, channel, last_here, args = std::move(args)]() mutable {
    if (stopped_) return;
    eval(broker_.shard_index(channel), s_exit, channel_keys(channel, node_), std::move(args), [](redisReply*) {});
    if (last_here) broker_.command_on(0, {"SREM", node_channels_key(node_), channel}, [](redisReply*) {});
  });
}

void redis_presence::snapshot(const std::string& channel, std::size_t limit,
                              std::function<void(snapshot_result)> done) {
  net::post(broker_.io(), [this, channel, limit, done = std::move(done)]() mutable {
    auto keys = channel_keys(channel, node_);
    keys.pop_back();
    eval(broker_.shard_index(channel), s_snapshot, std::move(keys), {std::to_string(limit)},
         [done = std::move(done)](redisReply* r) {
           if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->type != REDIS_REPLY_INTEGER ||
               r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_INTEGER ||
               r->element[3]->type != REDIS_REPLY_ARRAY)
             return done(util::api_error{503, "unavailable", "the broker (Redis) is not reachable"});
           core::presence_snapshot s;
           s.users = static_cast<std::size_t>(std::max<long long>(0, r->element[0]->integer));
           const auto named = static_cast<std::size_t>(std::max<long long>(0, r->element[1]->integer));
           s.anonymous = static_cast<std::size_t>(std::max<long long>(0, r->element[2]->integer));
           s.connections = named + s.anonymous;
           const redisReply* kv = r->element[3];
           for (std::size_t i = 0; i + 1 < kv->elements; i += 2) {
             if (kv->element[i]->type != REDIS_REPLY_STRING || kv->element[i + 1]->type != REDIS_REPLY_STRING) continue;
             auto v = str(kv->element[i + 1]);
             auto sp = v.find(' ');
             if (sp == std::string_view::npos) continue;
             s.clients.push_back(
                 {std::string(str(kv->element[i])), std::string(v.substr(sp + 1)), transport_from(v.substr(0, sp))});
           }
           s.truncated = named > s.clients.size();
           done(std::move(s));
         });
  });
}

void redis_presence::start() { heartbeat(); }

void redis_presence::stop() {
  stopped_ = true;
  timer_.cancel();
}

void redis_presence::beat() {
  broker_.command_on(0,
                     {"SET", node_key(node_), std::to_string(util::unix_ms()), "PX", std::to_string(node_ttl.count())},
                     [](redisReply*) {});
  broker_.command_on(0, {"SADD", nodes_key, node_}, [](redisReply*) {});
}

void redis_presence::heartbeat() {
  if (stopped_) return;
  beat();
  // Any node whose heartbeat is gone is reaped by whoever notices first (the scripts are
  // idempotent: a second reaper finds nothing left).
  broker_.command_on(0, {"SMEMBERS", nodes_key}, [this](redisReply* r) {
    if (stopped_ || !r || r->type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->type != REDIS_REPLY_STRING) continue;
      std::string other(str(r->element[i]));
      if (other == node_) continue;
      broker_.command_on(0, {"EXISTS", node_key(other)}, [this, other](redisReply* e) {
        if (!stopped_ && e && e->type == REDIS_REPLY_INTEGER && e->integer == 0) reap(other);
      });
    }
  });
  timer_.expires_after(heartbeat_interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) heartbeat();
  });
}

void redis_presence::reap(const std::string& node) {
  broker_.command_on(0, {"SMEMBERS", node_channels_key(node)}, [this, node](redisReply* r) {
    if (stopped_ || !r || r->type != REDIS_REPLY_ARRAY) return;
    auto left = std::make_shared<std::size_t>(r->elements);
    auto failed = std::make_shared<bool>(false);
    auto forget = [this, node] {
      // Only once every channel is clean: a shard that was down is retried next time.
      broker_.command_on(0, {"DEL", node_channels_key(node)}, [](redisReply*) {});
      broker_.command_on(0, {"SREM", nodes_key, node}, [](redisReply*) {});
      util::log::info("presence_node_reaped", {{"node", node}});
    };
    if (r->elements == 0) return forget();
    for (std::size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->type != REDIS_REPLY_STRING) {
        --*left;
        continue;
      }
      std::string channel(str(r->element[i]));
      const bool announce = broker_.namespaces().for_channel(channel).join_leave;
      eval(broker_.shard_index(channel), s_reap, channel_keys(channel, node),
           {node, announce ? "1" : "0", pubsub_name(channel), std::to_string(util::unix_ms())},
           [left, failed, forget](redisReply* x) {
             if (!x || x->type == REDIS_REPLY_ERROR) *failed = true;
             if (--*left == 0 && !*failed) forget();
           });
    }
  });
}

void redis_presence::on_shard_up(std::size_t shard) {
  if (stopped_) return;
  std::size_t channels = 0, entries = 0;
  local_.for_each_channel(
      [&](const std::string& channel, std::size_t anonymous, const std::vector<core::presence_client>& clients) {
        if (shard == 0) broker_.command_on(0, {"SADD", node_channels_key(node_), channel}, [](redisReply*) {});
        if (broker_.shard_index(channel) != shard) return;
        ++channels;
        entries += clients.size() + anonymous;
        // One script per channel and batch: the anonymous count (absolute) in the first.
        for (std::size_t from = 0; from == 0 || from < clients.size(); from += rebuild_batch) {
          std::vector<std::string> args{node_, from == 0 ? std::to_string(anonymous) : std::string()};
          for (std::size_t i = from; i < std::min(clients.size(), from + rebuild_batch); ++i) {
            args.push_back(clients[i].client);
            args.push_back(clients[i].user);
            args.emplace_back(core::transport_name(clients[i].kind));
          }
          eval(shard, s_rebuild, channel_keys(channel, node_), std::move(args), [](redisReply*) {});
        }
      });
  if (shard == 0) beat();
  if (channels)
    util::log::info("presence_restored", {{"shard", shard}, {"channels", channels}, {"connections", entries}});
}

}  // namespace herald::broker
