#include "core/presence.hpp"

#include <random>
#include <tuple>

#include "protocol/json_text.hpp"
#include "util/clock.hpp"

namespace herald::core {

std::string_view transport_name(transport t) noexcept {
  switch (t) {
    case transport::sse:
      return "sse";
    case transport::poll:
      return "poll";
    case transport::ws:
      return "ws";
  }
  return "ws";
}

std::string who_json(const std::string& user, const std::string& client, transport t) {
  std::string body = "{\"user\":";
  body += protocol::json_quote(user);
  body += ",\"client\":";
  body += protocol::json_quote(client);
  body += ",\"transport\":\"";
  body += transport_name(t);
  body += "\"}";
  return body;
}

util::api_error presence_disabled(std::string_view channel) {
  return {403, "presence_disabled",
          "presence is not enabled in the namespace of channel " + std::string(channel) +
              " (namespace option presence=true)"};
}

presence_registry::presence_registry(const namespace_table& namespaces, broker* signals)
    : namespaces_(namespaces), signals_(signals), shards_(new shard[shard_count]) {
  // Ids name a connection in presence listings and join/leave events: a random node
  // prefix keeps them apart across nodes and restarts, the counter within a process.
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::uint32_t r = rd();
  for (int i = 0; i < 8; ++i, r >>= 4) node_prefix_ += hex[r & 15];
  node_prefix_ += '.';
}

std::string presence_registry::next_client_id() {
  return node_prefix_ + std::to_string(next_id_.fetch_add(1, std::memory_order_relaxed) + 1);
}

bool presence_registry::tracks(std::string_view channel) const {
  const auto& o = namespaces_.for_channel(channel);
  return o.presence || o.join_leave;
}

presence_registry::shard& presence_registry::shard_for(std::string_view channel) const {
  return shards_[util::string_hash{}(channel) % shard_count];
}

void presence_registry::enter(const std::string& channel, const std::string& client, const std::string& user,
                              transport kind) {
  bool first = false;  // the user's first connection here
  {
    auto& sh = shard_for(channel);
    std::lock_guard lock(sh.m);
    auto [it, new_here] = sh.channels.try_emplace(channel);
    auto& cp = it->second;
    if (user.empty()) {
      ++cp.anonymous;
    } else {
      if (!cp.clients.emplace(client, entry{user, kind}).second) return;  // already there
      first = ++cp.users[user] == 1;
    }
    // Under the lock: the join of a second tab cannot overtake the leave of the first.
    const bool announce = namespaces_.for_channel(channel).join_leave;
    if (mirror_)
      mirror_->entered(channel, client, user, kind, announce, new_here);
    else if (first && announce)
      send(protocol::message_kind::join, channel, client, user, kind);
  }
  connections_.fetch_add(1, std::memory_order_relaxed);
}

void presence_registry::exit(const std::string& channel, const std::string& client, const std::string& user) {
  bool last = false;  // the user's last connection here
  transport kind = transport::ws;
  {
    auto& sh = shard_for(channel);
    std::lock_guard lock(sh.m);
    auto it = sh.channels.find(channel);
    if (it == sh.channels.end()) return;
    auto& cp = it->second;
    if (user.empty()) {
      if (cp.anonymous == 0) return;
      --cp.anonymous;
    } else {
      auto c = cp.clients.find(client);
      if (c == cp.clients.end()) return;
      kind = c->second.kind;
      cp.clients.erase(c);
      auto u = cp.users.find(user);
      if (u != cp.users.end() && --u->second == 0) {
        cp.users.erase(u);
        last = true;
      }
    }
    const bool gone_here = cp.anonymous == 0 && cp.clients.empty();
    if (gone_here) sh.channels.erase(it);
    const bool announce = namespaces_.for_channel(channel).join_leave;
    if (mirror_)
      mirror_->exited(channel, client, user, kind, announce, gone_here);
    else if (last && announce)
      send(protocol::message_kind::leave, channel, client, user, kind);
  }
  connections_.fetch_sub(1, std::memory_order_relaxed);
}

void presence_registry::send(protocol::message_kind kind, const std::string& channel, const std::string& client,
                             const std::string& user, transport t) {
  if (!signals_) return;
  const std::string body = who_json(user, client, t);
  // Called under the channel's shard lock: the broker only posts (Redis) or hands the
  // signal to the hub (memory), which takes its own locks and never calls back here.
  // Nobody waits for the answer: a join or leave the broker could not send (Redis down)
  // is lost like any live-only signal; presence itself stays right on the node.
  signals_->signal(std::make_shared<protocol::message>(kind, channel, util::unix_ms(), std::string(), body),
                   [](std::optional<util::api_error>) {});
}

presence_snapshot presence_registry::snapshot(std::string_view channel, std::size_t limit) const {
  presence_snapshot out;
  auto& sh = shard_for(channel);
  std::lock_guard lock(sh.m);
  auto it = sh.channels.find(channel);
  if (it == sh.channels.end()) return out;
  const auto& cp = it->second;
  out.users = cp.users.size();
  out.anonymous = cp.anonymous;
  out.connections = cp.clients.size() + cp.anonymous;
  out.truncated = cp.clients.size() > limit;
  out.clients.reserve(std::min(limit, cp.clients.size()));
  for (const auto& [id, e] : cp.clients) {
    if (out.clients.size() >= limit) break;
    out.clients.push_back({id, e.user, e.kind});
  }
  return out;
}

void presence_registry::shared_snapshot(const std::string& channel, std::size_t limit,
                                        std::function<void(presence_mirror::snapshot_result)> done) const {
  if (mirror_) return mirror_->snapshot(channel, limit, std::move(done));
  done(snapshot(channel, limit));
}

void presence_registry::for_each_channel(
    const std::function<void(const std::string&, std::size_t, const std::vector<presence_client>&)>& fn) const {
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::vector<std::tuple<std::string, std::size_t, std::vector<presence_client>>> copy;
    {
      std::lock_guard lock(shards_[i].m);
      for (const auto& [name, cp] : shards_[i].channels) {
        std::vector<presence_client> clients;
        clients.reserve(cp.clients.size());
        for (const auto& [id, e] : cp.clients) clients.push_back({id, e.user, e.kind});
        copy.emplace_back(name, cp.anonymous, std::move(clients));
      }
    }
    for (const auto& [name, anonymous, clients] : copy) fn(name, anonymous, clients);
  }
}

std::string presence_registry::to_json(const presence_snapshot& s) {
  std::string out = "{\"clients\":[";
  for (std::size_t i = 0; i < s.clients.size(); ++i) {
    const auto& c = s.clients[i];
    if (i) out += ',';
    out += "{\"client\":";
    out += protocol::json_quote(c.client);
    out += ",\"user\":";
    out += protocol::json_quote(c.user);
    out += ",\"transport\":\"";
    out += transport_name(c.kind);
    out += "\"}";
  }
  out += "],\"users\":";
  out += std::to_string(s.users);
  out += ",\"connections\":";
  out += std::to_string(s.connections);
  out += ",\"anonymous\":";
  out += std::to_string(s.anonymous);
  if (s.truncated) out += ",\"truncated\":true";
  out += '}';
  return out;
}

std::size_t presence_registry::channels() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lock(shards_[i].m);
    n += shards_[i].channels.size();
  }
  return n;
}

}  // namespace herald::core
