#include "broker/memory/memory_broker.hpp"

#include "util/clock.hpp"
#include "util/string_hash.hpp"

namespace herald::broker {

using core::history_query;
using core::history_reply;
using core::publish_request;
using util::api_error;

struct memory_broker::channel {
  std::mutex m;
  std::string name;
  std::uint32_t epoch = 0;
  std::uint64_t top = 0;
  core::history hist;
  std::int64_t last_active_ms = 0;
  bool dead = false;  // reclaimed: a publisher holding it must look the channel up again
  bool ended = false;  // its end is published: later publishes are refused
  const core::namespace_options* ns = nullptr;
};

// Adds what a change of one channel's history did to the broker's running totals.
// Construct before the change, under the channel's lock.
struct history_change {
  history_change(memory_broker& b, const core::history& h)
      : b_(b), h_(h), size_(static_cast<std::int64_t>(h.size())), bytes_(static_cast<std::int64_t>(h.bytes())) {}
  ~history_change() {
    // Most reads change nothing: no write to the shared totals then.
    if (const auto d = static_cast<std::int64_t>(h_.size()) - size_; d)
      b_.history_messages_.fetch_add(d, std::memory_order_relaxed);
    if (const auto d = static_cast<std::int64_t>(h_.bytes()) - bytes_; d)
      b_.history_bytes_.fetch_add(d, std::memory_order_relaxed);
  }
  memory_broker& b_;
  const core::history& h_;
  std::int64_t size_, bytes_;
};

struct alignas(64) memory_broker::shard {
  mutable std::mutex m;
  std::unordered_map<std::string, std::shared_ptr<channel>, util::string_hash, std::equal_to<>> map;
};

memory_broker::memory_broker(const core::namespace_table& namespaces, memory_broker_options opts,
                             std::function<bool(std::string_view)> has_subscribers)
    : namespaces_(namespaces),
      opts_(opts),
      has_subscribers_(std::move(has_subscribers)),
      shards_(new shard[shard_count]),
      rng_(std::random_device{}()) {}

memory_broker::~memory_broker() = default;

memory_broker::shard& memory_broker::shard_for(std::string_view name) const {
  return shards_[util::string_hash{}(name) % shard_count];
}

std::uint32_t memory_broker::new_epoch() {
  std::lock_guard lock(rng_mutex_);
  std::uint32_t e;
  do e = static_cast<std::uint32_t>(rng_());
  while (e == 0);  // 0 never names an epoch
  return e;
}

std::shared_ptr<memory_broker::channel> memory_broker::find(const std::string& name) const {
  auto& sh = shard_for(name);
  std::lock_guard lock(sh.m);
  auto it = sh.map.find(name);
  return it == sh.map.end() ? nullptr : it->second;
}

std::shared_ptr<memory_broker::channel> memory_broker::find_or_create(const std::string& name, api_error& err) {
  auto& sh = shard_for(name);
  std::lock_guard lock(sh.m);
  auto it = sh.map.find(name);
  if (it != sh.map.end()) return it->second;
  if (channel_count_.load(std::memory_order_relaxed) >= opts_.max_channels) {
    err = {429, "too_many_channels",
           "the broker holds the maximum number of channels (" + std::to_string(opts_.max_channels) + ")"};
    return nullptr;
  }
  auto c = std::make_shared<channel>();
  c->name = name;
  c->epoch = new_epoch();
  c->ns = &namespaces_.for_channel(name);
  c->last_active_ms = util::steady_ms();
  sh.map.emplace(name, c);
  channel_count_.fetch_add(1, std::memory_order_relaxed);
  return c;
}

namespace {

api_error refusal(const std::string& code, std::string message, std::uint64_t next) {
  api_error e{409, code, std::move(message)};
  e.extra_json = "\"next_offset\":" + std::to_string(next);
  return e;
}

}  // namespace

void memory_broker::publish(publish_request req, std::function<void(publish_result)> done) {
  protocol::message_ptr msg;
  std::optional<api_error> refused;
  for (;;) {
    api_error err;
    auto c = find_or_create(req.channel, err);
    if (!c) return done(std::move(err));
    std::lock_guard lock(c->m);
    if (c->dead) continue;  // reclaimed between lookup and lock: take the new one
    // Under the channel lock: the checks and the append are one step.
    if (c->ended) {
      refused = refusal("stream_ended", "channel " + c->name + " has ended: its end is its last message", c->top + 1);
      break;
    }
    if (req.expected_offset && *req.expected_offset != c->top + 1) {
      refused = refusal("offset_mismatch", "the next offset of " + c->name + " is " + std::to_string(c->top + 1),
                        c->top + 1);
      break;
    }
    const auto now = util::steady_ms();
    const auto& ns = *c->ns;
    c->ended = req.event == core::end_event;
    msg = std::make_shared<protocol::message>(c->name, c->top + 1, c->epoch, util::unix_ms(), std::move(req.event),
                                              req.data_json);
    ++c->top;
    c->last_active_ms = now;
    {
      history_change change(*this, c->hist);
      c->hist.expire(now, std::chrono::milliseconds(ns.history_ttl).count());
      c->hist.push(msg, now, ns.history_size, ns.history_bytes);
    }
    // Under the channel lock: listeners see this channel in offset order.
    if (listener_) listener_->on_publication(msg);
    break;
  }
  if (refused) return done(std::move(*refused));
  done(std::move(msg));
}

namespace {

// The answer to `q` from one channel's state; the caller holds the channel's lock.
template <class Channel>
void read_history(Channel& c, const history_query& q, history_reply& reply, api_error& err) {
  reply.epoch = c.epoch;
  reply.top = c.top;
  reply.ended = c.ended;
  if (q.earliest) {
    c.hist.since(0, q.limit, reply.messages, q.max_bytes);
  } else if (!q.since) {
    c.hist.latest(q.limit, reply.messages, q.max_bytes);
  } else if (q.since->epoch != c.epoch) {
    // (0, 0): before the first message of any life (read while the channel had none).
    if (q.since->epoch == 0 && q.since->offset == 0 && !c.hist.empty() && c.hist.first_offset() == 1)
      c.hist.since(0, q.limit, reply.messages, q.max_bytes);
    else
      reply.recovered = false;
  } else if (q.since->offset > c.top) {
    err = {400, "bad_cursor", "cursor is ahead of channel " + q.channel};
  } else if (q.since->offset < c.top) {
    if (c.hist.empty() || q.since->offset + 1 < c.hist.first_offset())
      reply.recovered = false;  // evicted or expired
    else
      c.hist.since(q.since->offset, q.limit, reply.messages, q.max_bytes);
  }
}

}  // namespace

void memory_broker::history(history_query q, std::function<void(history_result)> done) {
  history_reply reply;
  api_error err;
  for (;;) {
    // A read creates nothing (anonymous readers must not fill max_channels): a channel
    // with no life yet answers epoch 0, top 0, and the position (0, 0) it gives its
    // reader is recovered by the first life's offset 1 (core/broker.hpp).
    auto c = find(q.channel);
    if (!c) {
      if (q.since && q.since->epoch != 0)
        reply.recovered = false;
      else if (q.since && q.since->offset != 0)
        err = {400, "bad_cursor", "cursor is ahead of channel " + q.channel};
      break;
    }
    std::lock_guard lock(c->m);
    if (c->dead) continue;  // reclaimed between lookup and lock
    const auto now = util::steady_ms();
    c->last_active_ms = now;
    {
      history_change change(*this, c->hist);
      c->hist.expire(now, std::chrono::milliseconds(c->ns->history_ttl).count());
    }
    read_history(*c, q, reply, err);
    break;
  }
  // The callback runs without the channel lock: it may publish or read again.
  if (!err.code.empty()) return done(std::move(err));
  done(std::move(reply));
}

std::vector<std::shared_ptr<memory_broker::channel>> memory_broker::snapshot(std::size_t i) const {
  std::lock_guard lock(shards_[i].m);
  std::vector<std::shared_ptr<channel>> list;
  list.reserve(shards_[i].map.size());
  for (auto& [_, c] : shards_[i].map) list.push_back(c);
  return list;
}

void memory_broker::channels(std::function<void(std::vector<core::channel_summary>)> done) const {
  std::vector<core::channel_summary> out;
  for (std::size_t i = 0; i < shard_count; ++i)
    for (auto& c : snapshot(i)) {
      std::lock_guard lock(c->m);
      if (!c->dead) out.push_back({c->name, c->epoch, c->top, c->hist.size()});
    }
  done(std::move(out));  // inline, on the caller's thread
}

core::broker_stats memory_broker::stats() const {
  core::broker_stats s;
  s.channels = channel_count_.load(std::memory_order_relaxed);
  s.history_messages =
      static_cast<std::size_t>(std::max<std::int64_t>(0, history_messages_.load(std::memory_order_relaxed)));
  s.history_bytes = static_cast<std::size_t>(std::max<std::int64_t>(0, history_bytes_.load(std::memory_order_relaxed)));
  return s;
}

void memory_broker::put_once(std::string key, std::string value, std::chrono::milliseconds ttl,
                             std::function<void(std::optional<util::api_error>)> done) {
  {
    std::lock_guard lock(once_mutex_);
    if (once_.size() >= max_once_values)
      return done(util::api_error{503, "unavailable", "too many outstanding tickets, try again later"});
    once_[std::move(key)] = {std::move(value), util::steady_ms() + ttl.count()};
  }
  done(std::nullopt);
}

void memory_broker::take_once(std::string key, std::function<void(take_result)> done) {
  std::optional<std::string> value;
  {
    std::lock_guard lock(once_mutex_);
    auto it = once_.find(key);
    if (it != once_.end()) {
      if (it->second.expires_ms > util::steady_ms()) value = std::move(it->second.value);
      once_.erase(it);
    }
  }
  done(std::move(value));
}

// One node: a lease is only ever contended by this node's own ingests (already kept
// apart by core::stream_registry), but it keeps the port's meaning all the same.
void memory_broker::lease(std::string key, std::string holder, std::chrono::milliseconds ttl,
                          std::function<void(lease_result)> done) {
  bool held;
  {
    std::lock_guard lock(once_mutex_);
    const auto now = util::steady_ms();
    auto [it, fresh] = leases_.try_emplace(std::move(key), once_value{holder, 0});
    held = fresh || it->second.value == holder || it->second.expires_ms <= now;
    if (held) it->second = {std::move(holder), now + ttl.count()};
  }
  done(held);
}

void memory_broker::release_lease(std::string key, std::string holder) {
  std::lock_guard lock(once_mutex_);
  auto it = leases_.find(key);
  if (it != leases_.end() && it->second.value == holder) leases_.erase(it);
}

std::size_t memory_broker::sweep() {
  const auto now = util::steady_ms();
  {
    std::lock_guard lock(once_mutex_);
    std::erase_if(once_, [now](const auto& kv) { return kv.second.expires_ms <= now; });
    std::erase_if(leases_, [now](const auto& kv) { return kv.second.expires_ms <= now; });
  }
  const auto idle_ms = std::chrono::milliseconds(opts_.idle_ttl).count();
  std::size_t reclaimed = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    auto& sh = shards_[i];
    for (auto& c : snapshot(i)) {
      bool idle;
      {
        std::lock_guard lock(c->m);
        {
          history_change change(*this, c->hist);
          c->hist.expire(now, std::chrono::milliseconds(c->ns->history_ttl).count());
        }
        idle = c->hist.empty() && now - c->last_active_ms >= idle_ms;
      }
      if (!idle || has_subscribers_(c->name)) continue;
      std::lock_guard slock(sh.m);
      std::lock_guard clock(c->m);
      if (!c->hist.empty() || now - c->last_active_ms < idle_ms) continue;  // published meanwhile
      c->dead = true;
      sh.map.erase(c->name);
      channel_count_.fetch_sub(1, std::memory_order_relaxed);
      ++reclaimed;
    }
  }
  return reclaimed;
}

}  // namespace herald::broker
