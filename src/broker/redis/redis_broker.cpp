#include "broker/redis/redis_broker.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <limits>
#include <stdexcept>

#include "broker/redis/redis_broker_shard.hpp"
#include "broker/redis/redis_connection.hpp"
#include "broker/redis/redis_presence.hpp"
#include "broker/redis/redis_scripts.hpp"
#include "broker/redis/redis_signals.hpp"
#include "broker/redis/sentinel_watch.hpp"
#include "metrics/metrics.hpp"
#include "protocol/cursor.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/parse_decimal.hpp"

namespace herald::broker {

namespace net = boost::asio;
using util::api_error;

namespace {

constexpr int publish_script = 0;
constexpr int history_script = 1;
const char* const scripts[2] = {redis_scripts::publish, redis_scripts::history};

std::string meta_key(const std::string& c) { return "herald:{" + c + "}:m"; }
std::string list_key(const std::string& c) { return "herald:{" + c + "}:h"; }
std::string pubsub_name(const std::string& c) { return "herald:p:" + c; }
constexpr std::string_view pubsub_prefix = "herald:p:";
std::string once_key(const std::string& k) { return "herald:once:" + k; }
// Stop requests between nodes, "<channel> <reason>" (not under pubsub_prefix: no channel).
constexpr const char* control_stop = "herald:ctl:stop";

api_error unavailable() { return {503, "unavailable", "the broker (Redis) is not reachable"}; }

std::string_view str(const redisReply* r) { return {r->str, r->len}; }

// Epochs, offsets and times as the scripts write them: unsigned decimal.
template <class T>
bool to_number(std::string_view s, T& out) {
  const auto v = util::parse_decimal(s, static_cast<std::uint64_t>(std::numeric_limits<T>::max()));
  if (v) out = static_cast<T>(*v);
  return v.has_value();
}

// Splits `s` into N fields at its first N-1 spaces (the last field keeps its spaces).
template <std::size_t N>
bool split_fields(std::string_view s, std::string_view (&out)[N]) {
  for (std::size_t i = 0; i + 1 < N; ++i) {
    auto sp = s.find(' ');
    if (sp == std::string_view::npos) return false;
    out[i] = s.substr(0, sp);
    s.remove_prefix(sp + 1);
  }
  out[N - 1] = s;
  return true;
}

// A history entry "<offset> <time> <event|.> <data>" of `channel` in `epoch`.
protocol::message_ptr entry_message(const std::string& channel, std::uint32_t epoch, std::string_view entry) {
  std::string_view f[4];
  std::uint64_t offset;
  std::int64_t time;
  if (!split_fields(entry, f) || !to_number(f[0], offset) || !to_number(f[1], time)) return nullptr;
  return std::make_shared<protocol::message>(channel, offset, epoch, time, f[2] == "." ? "" : std::string(f[2]), f[3]);
}

}  // namespace

std::string redis_broker::script_sha(std::string_view script) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(), d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

redis_broker::redis_broker(const core::namespace_table& namespaces, redis_broker_options opts)
    : namespaces_(namespaces), opts_(std::move(opts)), node_id_(new_node_id()) {
  for (int i = 0; i < 2; ++i) script_sha_[i] = script_sha(scripts[i]);
  for (std::size_t i = 0; i < opts_.shards.size(); ++i) {
    auto s = std::make_unique<shard>();
    const auto& ep = opts_.shards[i];
    s->cmd = std::make_unique<redis_connection>(ioc_, ep.host, ep.port, "cmd");
    s->sub = std::make_unique<redis_connection>(ioc_, ep.host, ep.port, "sub");
    shard* sp = s.get();
    if (!ep.master.empty()) {
      s->sentinel = std::make_unique<sentinel_watch>(ioc_, opts_.sentinels, ep.master, opts_.sentinel_poll,
                                                     [sp](const std::string& host, int port) {
                                                       sp->cmd->retarget(host, port);
                                                       sp->sub->retarget(host, port);
                                                     },
                                                     [sp] { return usable(*sp); });
    }
    auto update_ready = [this] {
      std::size_t n = 0;
      for (auto& sh : shards_) n += !sh->life.empty() && sh->sub_up;
      ready_shards_ = n;
    };
    // Lost and restored, per connection: what an operator needs to see an outage (and
    // its length) in the log. A connection that never came up stays silent here; the
    // readiness probe (/readyz) tells that one.
    auto up = [i, sp](const char* conn, std::int64_t& down_ms) {
      const auto addr = sp->cmd->address();
      if (down_ms == 0) {
        util::log::info("redis_connected", {{"shard", i}, {"addr", addr}, {"conn", conn}});
      } else {
        util::log::info("redis_restored",
                        {{"shard", i}, {"addr", addr}, {"conn", conn}, {"down_ms", util::steady_ms() - down_ms}});
      }
    };
    auto down = [this, i, sp](const char* conn, std::int64_t& down_ms) {
      down_ms = util::steady_ms();
      if (!stopping_)
        util::log::warn("redis_lost", {{"shard", i},
                                       {"addr", sp->cmd->address()},
                                       {"conn", conn},
                                       {"msg", "reconnecting with back-off"}});
      if (sp->sentinel) sp->sentinel->ask_now();
    };
    s->cmd->on_up = [this, i, sp, update_ready, up] {
      up("cmd", sp->cmd_down_ms);
      sp->cmd_up = true;
      // Presence is put back once the shard is known to be a primary.
      check_primary(*sp, i, [this, i, update_ready] {
        update_ready();
        if (presence_) presence_->on_shard_up(i);
      });
    };
    s->cmd->on_down = [sp, update_ready, down] {
      down("cmd", sp->cmd_down_ms);
      sp->cmd_up = false;
      sp->life.clear();
      update_ready();
    };
    s->sub->on_up = [this, sp, update_ready, up] {
      up("sub", sp->sub_down_ms);
      sp->sub_up = true;
      update_ready();
      on_pubsub_up(*sp);
    };
    s->sub->on_down = [this, sp, update_ready, down] {
      down("sub", sp->sub_down_ms);
      sp->sub_up = false;
      sp->acks_pending.clear();
      update_ready();
      // Reads waiting for a SUBSCRIBE go ahead (and fail fast if Redis is gone);
      // live delivery is re-synced once the subscriptions are back.
      for (auto& [_, w] : sp->channels) {
        w.confirmed = false;
        auto waiting = std::move(w.waiting);
        w.waiting.clear();
        for (auto& fn : waiting) net::post(ioc_, std::move(fn));
      }
    };
    shards_.push_back(std::move(s));
  }
}

redis_broker::~redis_broker() { stop(); }

void redis_broker::check_primary(shard& s, std::size_t index, std::function<void()> update_ready) {
  // Before any script: is it a primary, and which life of it (its replication ID)?
  s.cmd->command({"INFO", "replication"}, [this, &s, index, update_ready = std::move(update_ready)](redisReply* r) {
    if (!r || r->type != REDIS_REPLY_STRING) return;  // lost: on_down follows
    const auto info = str(r);
    auto value = [&](std::string_view key) -> std::string_view {
      auto at = info.find(key);
      if (at == std::string_view::npos) return {};
      auto v = info.substr(at + key.size());
      return v.substr(0, v.find_first_of("\r\n"));
    };
    const auto role = value("\nrole:");
    const auto replid = value("master_replid:");
    if (role != "master" || replid.empty()) {
      util::log::throttled(util::log::level::warn, "redis_not_primary", util::log::field("addr", s.cmd->address()),
                           {{"shard", index}, {"role", role}, {"msg", "not a primary: reconnecting"}});
      if (s.sentinel) s.sentinel->ask_now();
      s.cmd->reconnect();
      return;
    }
    if (s.life != replid && !s.life.empty())
      util::log::info("redis_new_primary_life", {{"shard", index}, {"addr", s.cmd->address()}, {"replid", replid}});
    s.life = std::string(replid);
    update_ready();
  });
}

void redis_broker::start() {
  work_ = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(ioc_.get_executor());
  net::post(ioc_, [this] {
    if (presence_) presence_->start();
    for (auto& s : shards_) {
      if (s->sentinel) s->sentinel->start();
      s->cmd->start(opts_.command_timeout);
      s->sub->start();
    }
  });
  thread_ = std::thread([this] {
    // As for the event loops (transport::thread_context::run): the last line of defence
    // against a handler that throws, not the error handling; logged, counted, run again.
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        metrics::add(metrics::counter::internal_errors);
        util::log::throttled(util::log::level::error, "internal_error", util::log::field("what", e.what()),
                             {{"thread", "redis"}});
      } catch (...) {
        metrics::add(metrics::counter::internal_errors);
        util::log::throttled(util::log::level::error, "internal_error", util::log::field("what", "unknown exception"),
                             {{"thread", "redis"}});
      }
    }
  });
}

core::presence_mirror* redis_broker::share_presence(core::presence_registry& local) {
  presence_ = std::make_unique<redis_presence>(*this, local);
  return presence_.get();
}

std::size_t redis_broker::shard_index(const std::string& key) const {
  return protocol::channel_tag(key) % shards_.size();
}

void redis_broker::command_on(std::size_t shard, std::vector<std::string> args, std::function<void(redisReply*)> fn) {
  auto& s = *shards_[shard];
  if (!s.cmd || !s.cmd->connected()) return fn(nullptr);
  s.cmd->command(args, std::move(fn));
}

void redis_broker::stop() {
  if (!thread_.joinable()) return;
  net::post(ioc_, [this] {
    if (presence_) presence_->stop();
    stopping_ = true;  // the connections go down now: not an outage
    for (auto& s : shards_) {
      s->sentinel.reset();
      s->cmd.reset();  // fails what is in flight (callbacks with nullptr)
      s->sub.reset();
    }
    work_.reset();
  });
  thread_.join();
}

bool redis_broker::ready() const { return ready_shards_.load() == shards_.size(); }

bool redis_broker::usable(const shard& s) { return s.cmd && s.cmd->connected() && !s.life.empty(); }

redis_broker::shard& redis_broker::shard_for(const std::string& channel) {
  return *shards_[protocol::channel_tag(channel) % shards_.size()];
}

std::string redis_broker::epoch_candidate() {
  std::uint32_t e;
  do e = static_cast<std::uint32_t>(rng_());
  while (e == 0);
  return std::to_string(e);
}

void redis_broker::eval(shard& s, int script, std::vector<std::string> args, std::function<void(redisReply*)> fn) {
  // EVALSHA, falling back to EVAL (which caches the script) after a Redis restart.
  std::vector<std::string> cmd{"EVALSHA", script_sha_[script], "2"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  s.cmd->command(cmd, [this, &s, script, args = std::move(args), fn = std::move(fn)](redisReply* r) mutable {
    if (r && r->type == REDIS_REPLY_ERROR && str(r).starts_with("NOSCRIPT")) {
      std::vector<std::string> full{"EVAL", scripts[script], "2"};
      full.insert(full.end(), args.begin(), args.end());
      if (!s.cmd) return fn(nullptr);
      s.cmd->command(full, std::move(fn));
      return;
    }
    fn(r);
  });
}

void redis_broker::publish(core::publish_request req, std::function<void(publish_result)> done) {
  net::post(ioc_, [this, req = std::move(req), done = std::move(done)]() mutable {
    auto& s = shard_for(req.channel);
    if (!usable(s)) return done(unavailable());
    const auto& ns = namespaces_.for_channel(req.channel);
    const auto ttl_ms = std::chrono::milliseconds(ns.history_ttl).count();
    const auto meta_ttl =
        opts_.meta_ttl.count() == 0 ? 0 : std::max<long long>(opts_.meta_ttl.count(), ns.history_ttl.count());
    const auto now = util::unix_ms();
    std::string event = req.event.empty() ? "." : req.event;
    // Arguments first: the callback below takes `req` over.
    std::vector<std::string> args{meta_key(req.channel),
                                  list_key(req.channel),
                                  pubsub_name(req.channel),
                                  req.data_json,
                                  event,
                                  std::to_string(ns.history_size),
                                  std::to_string(ttl_ms),
                                  std::to_string(meta_ttl),
                                  epoch_candidate(),
                                  std::to_string(now),
                                  req.expected_offset ? std::to_string(*req.expected_offset) : "",
                                  req.event == core::end_event ? "1" : "0",
                                  s.life,
                                  std::to_string(ns.history_bytes)};
    eval(s, publish_script, std::move(args), [this, &s, req = std::move(req), now, done = std::move(done)](redisReply* r) {
      if (r && r->type == REDIS_REPLY_ERROR && str(r).starts_with("READONLY")) {
        // Demoted under this connection: leave it, find the primary again.
        util::log::throttled(util::log::level::warn, "redis_not_primary", util::log::field("addr", s.cmd->address()),
                             {{"role", "replica"}, {"msg", "write refused (READONLY): reconnecting"}});
        if (s.sentinel) s.sentinel->ask_now();
        s.cmd->reconnect();
        return done(unavailable());
      }
      std::uint32_t epoch = 0;
      if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
          r->element[1]->type == REDIS_REPLY_INTEGER && !to_number(str(r->element[0]), epoch)) {
        // Refused by the script (core/broker.hpp): nothing was written.
        const auto next = static_cast<std::uint64_t>(r->element[1]->integer) + 1;
        api_error e =
            str(r->element[0]) == "ended"
                ? api_error{409, "stream_ended", "channel " + req.channel + " has ended: its end is its last message"}
                : api_error{409, "offset_mismatch", "the next offset of " + req.channel + " is " + std::to_string(next)};
        e.extra_json = "\"next_offset\":" + std::to_string(next);
        return done(std::move(e));
      }
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
          !to_number(str(r->element[0]), epoch) || r->element[1]->type != REDIS_REPLY_INTEGER)
        return done(unavailable());
      auto offset = static_cast<std::uint64_t>(r->element[1]->integer);
      done(std::make_shared<protocol::message>(req.channel, offset, epoch, now, req.event, req.data_json));
    });
  });
}

void redis_broker::signal(core::message_ptr m, std::function<void(std::optional<util::api_error>)> done) {
  net::post(ioc_, [this, m = std::move(m), done = std::move(done)]() mutable {
    auto& s = shard_for(m->channel());
    if (!s.cmd || !s.cmd->connected()) return done(unavailable());
    s.cmd->command({"PUBLISH", pubsub_name(m->channel()), signal_payload(*m)}, [done = std::move(done)](redisReply* r) {
      if (!r || r->type != REDIS_REPLY_INTEGER) return done(unavailable());
      done(std::nullopt);
    });
  });
}

void redis_broker::history(core::history_query q, std::function<void(history_result)> done) {
  net::post(ioc_, [this, q = std::move(q), done = std::move(done)]() mutable {
    auto& s = shard_for(q.channel);
    auto it = s.channels.find(q.channel);
    if (it != s.channels.end() && !it->second.confirmed && s.sub_up) {
      // Watched but not yet subscribed in Redis: read once the SUBSCRIBE is confirmed.
      it->second.waiting.push_back(
          [this, q = std::move(q), done = std::move(done)]() mutable { run_history(std::move(q), std::move(done)); });
      return;
    }
    run_history(std::move(q), std::move(done));
  });
}

void redis_broker::run_history(core::history_query q, std::function<void(history_result)> done) {
  auto& s = shard_for(q.channel);
  if (!usable(s)) return done(unavailable());
  const auto& ns = namespaces_.for_channel(q.channel);
  std::vector<std::string> args{meta_key(q.channel), list_key(q.channel),
                                q.earliest ? "earliest" : q.since ? "since" : "latest",
                                q.since ? std::to_string(q.since->epoch) : "0",
                                q.since ? std::to_string(q.since->offset) : "0", std::to_string(q.limit),
                                std::to_string(std::chrono::milliseconds(ns.history_ttl).count()),
                                std::to_string(util::unix_ms()), std::to_string(q.max_bytes),
                                // {"channel":"<C>","offset":,"time":,"data":} beyond the entry
                                std::to_string(q.channel.size() + 36), s.life};
  eval(s, history_script, std::move(args), [q = std::move(q), done = std::move(done)](redisReply* r) {
    std::uint32_t epoch = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4 || r->element[0]->type != REDIS_REPLY_STRING ||
        !to_number(str(r->element[0]), epoch) || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_STRING || r->element[3]->type != REDIS_REPLY_INTEGER)
      return done(unavailable());
    core::history_reply reply;
    reply.epoch = epoch;
    reply.top = static_cast<std::uint64_t>(r->element[1]->integer);
    const auto status = str(r->element[2]);
    if (status == "ahead") return done(api_error{400, "bad_cursor", "cursor is ahead of channel " + q.channel});
    reply.recovered = status == "ok";
    reply.ended = r->element[3]->integer == 1;
    for (std::size_t i = 4; i < r->elements; ++i) {
      if (r->element[i]->type != REDIS_REPLY_STRING) continue;
      if (auto m = entry_message(q.channel, epoch, str(r->element[i]))) reply.messages.push_back(std::move(m));
    }
    done(std::move(reply));
  });
}

// One-time values: SET with an expiry, taken with GETDEL (atomic: one taker wins).
void redis_broker::put_once(std::string key, std::string value, std::chrono::milliseconds ttl,
                            std::function<void(std::optional<util::api_error>)> done) {
  net::post(ioc_, [this, key = std::move(key), value = std::move(value), ttl, done = std::move(done)]() mutable {
    auto& s = shard_for(key);
    if (!usable(s)) return done(unavailable());
    s.cmd->command({"SET", once_key(key), value, "PX", std::to_string(std::max<long long>(1, ttl.count()))},
                   [done = std::move(done)](redisReply* r) {
                     if (!r || r->type != REDIS_REPLY_STATUS) return done(unavailable());
                     done(std::nullopt);
                   });
  });
}

void redis_broker::take_once(std::string key, std::function<void(take_result)> done) {
  net::post(ioc_, [this, key = std::move(key), done = std::move(done)]() mutable {
    auto& s = shard_for(key);
    if (!usable(s)) return done(unavailable());
    s.cmd->command({"GETDEL", once_key(key)}, [done = std::move(done)](redisReply* r) {
      if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) return done(unavailable());
      if (r->type == REDIS_REPLY_NIL) return done(std::optional<std::string>{});
      done(std::optional<std::string>{std::string(str(r))});
    });
  });
}

void redis_broker::watch(const std::string& channel) {
  net::post(ioc_, [this, channel] {
    auto& s = shard_for(channel);
    if (s.channels.count(channel)) return;
    s.channels[channel];
    ++watched_count_;
    if (s.sub_up) subscribe_on(s, channel);
  });
}

void redis_broker::unwatch(const std::string& channel) {
  net::post(ioc_, [this, channel] {
    auto& s = shard_for(channel);
    auto it = s.channels.find(channel);
    if (it == s.channels.end()) return;
    auto waiting = std::move(it->second.waiting);
    s.channels.erase(it);
    --watched_count_;
    if (s.sub_up) s.sub->unsubscribe(pubsub_name(channel));
    for (auto& w : waiting) w();
  });
}

void redis_broker::subscribe_on(shard& s, const std::string& channel) {
  ++s.acks_pending[channel];
  s.sub->subscribe(pubsub_name(channel), [this, &s](redisReply* r) { on_pubsub(s, r); });
}

void redis_broker::on_pubsub_up(shard& s) {
  // Stop requests travel on shard 0's Pub/Sub connection.
  if (&s == shards_.front().get()) {
    s.sub->subscribe(control_stop, [this](redisReply* r) { on_control(r); });
    s.sub->subscribe(redis_scripts::control_user, [this](redisReply* r) { on_user_control(r); });
    control_subscribed_ = true;
  }
  // (Re)subscribe everything watched; publications missed while down are recovered by
  // a re-sync of each channel once its SUBSCRIBE is confirmed.
  s.resubscribing = !s.channels.empty();
  for (auto& [name, w] : s.channels) subscribe_on(s, name);
}

void redis_broker::on_pubsub(shard& s, redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING)
    return;
  const auto kind = str(r->element[0]);
  auto name = str(r->element[1]);
  if (!name.starts_with(pubsub_prefix)) return;
  name.remove_prefix(pubsub_prefix.size());
  const std::string channel(name);
  if (kind == "subscribe") {
    auto pending = s.acks_pending.find(channel);
    if (pending != s.acks_pending.end() && --pending->second <= 0) s.acks_pending.erase(pending);
    auto it = s.channels.find(channel);
    if (it == s.channels.end() || s.acks_pending.count(channel)) return;
    bool was_confirmed = it->second.confirmed;
    it->second.confirmed = true;
    auto waiting = std::move(it->second.waiting);
    for (auto& w : waiting) w();
    if (!was_confirmed && s.resubscribing && listener_) listener_->on_resync(channel);
    return;
  }
  if (kind != "message" || r->element[2]->type != REDIS_REPLY_STRING || !listener_) return;
  if (is_signal_payload(str(r->element[2]))) {
    if (auto m = parse_signal_payload(channel, str(r->element[2]))) listener_->on_publication(m);
    return;
  }
  // "<epoch> <offset> <time> <event|.> <data>"
  std::string_view f[5];
  std::uint32_t epoch;
  std::uint64_t offset;
  std::int64_t time;
  if (!split_fields(str(r->element[2]), f) || !to_number(f[0], epoch) || !to_number(f[1], offset) ||
      !to_number(f[2], time))
    return;
  listener_->on_publication(
      std::make_shared<protocol::message>(channel, offset, epoch, time, f[3] == "." ? "" : std::string(f[3]), f[4]));
}

void redis_broker::on_control(redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      str(r->element[0]) != "message" || r->element[2]->type != REDIS_REPLY_STRING || !listener_)
    return;
  const auto payload = str(r->element[2]);
  const auto sp = payload.find(' ');
  const std::string channel(payload.substr(0, sp));
  const std::string reason(sp == std::string_view::npos ? std::string_view{} : payload.substr(sp + 1));
  if (!channel.empty()) listener_->on_stop_request(channel, reason);
}

void redis_broker::stop_remote(const std::string& channel, const std::string& reason, std::function<void(bool)> done) {
  net::post(ioc_, [this, channel, reason, done = std::move(done)]() mutable {
    auto& s0 = *shards_.front();
    if (!s0.cmd || !s0.cmd->connected()) return done(false);
    s0.cmd->command({"PUBLISH", control_stop, channel + " " + reason},
                    [this, channel, done = std::move(done)](redisReply* r) mutable {
                      // No other subscriber than this node: nobody else can hold the ingest.
                      if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < 2) return done(false);
                      await_end(channel, 24, std::move(done));
                    });
  });
}

void redis_broker::await_end(std::string channel, int tries_left, std::function<void(bool)> done) {
  auto& s = shard_for(channel);
  if (!s.cmd || !s.cmd->connected()) return done(false);
  s.cmd->command({"HEXISTS", meta_key(channel), "x"}, [this, channel, tries_left, done = std::move(done)](
                                                          redisReply* r) mutable {
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) return done(true);
    if (!r || tries_left <= 0 || stopping_) return done(false);
    auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(50));
    timer->async_wait([this, timer, channel = std::move(channel), tries_left, done = std::move(done)](
                          const boost::system::error_code& ec) mutable {
      if (ec || stopping_) return done(false);
      await_end(std::move(channel), tries_left - 1, std::move(done));
    });
  });
}

void redis_broker::channels(std::function<void(std::vector<core::channel_summary>)> done) const {
  // The channels this node watches (Redis holds the rest; listing them would scan it),
  // read on the broker thread, which owns the table; `done` runs there.
  net::post(const_cast<net::io_context&>(ioc_), [this, done = std::move(done)] {
    std::vector<core::channel_summary> out;
    out.reserve(watched_count_.load());
    for (auto& s : shards_)
      for (auto& [name, _] : s->channels) out.push_back({name, 0, 0, 0});
    done(std::move(out));
  });
}

std::size_t redis_broker::subscription_entries() const {
  std::size_t n = 0;
  for (auto& s : shards_)
    if (s->sub) n += s->sub->subscription_entries();
  // The control channels' entries (kept for the broker's life) are no channel's.
  return control_subscribed_ && n > 1 ? n - 2 : n;
}

core::broker_stats redis_broker::stats() const {
  core::broker_stats st;
  st.channels = watched_count_.load();
  return st;
}

}  // namespace herald::broker
