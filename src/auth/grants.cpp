#include "auth/grants.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "protocol/channel_name.hpp"

namespace herald::auth {
namespace json = boost::json;

std::optional<channel_pattern> channel_pattern::parse(std::string_view s) {
  channel_pattern p;
  if (s.ends_with('*')) {
    p.prefix = true;
    s.remove_suffix(1);
    // A prefix is a channel name cut short: the same alphabet, possibly empty.
    if (!s.empty() && !protocol::valid_channel_name(s)) return std::nullopt;
  } else if (!protocol::valid_channel_name(s)) {
    return std::nullopt;
  }
  p.text = std::string(s);
  return p;
}

bool channel_pattern::matches(std::string_view channel) const noexcept {
  return prefix ? channel.starts_with(text) : channel == text;
}

namespace {

bool any_match(const std::vector<channel_pattern>& ps, std::string_view channel) noexcept {
  return std::any_of(ps.begin(), ps.end(), [&](const channel_pattern& p) { return p.matches(channel); });
}

json::array to_array(const std::vector<channel_pattern>& ps) {
  json::array a;
  for (auto& p : ps) a.emplace_back(p.str());
  return a;
}

bool from_array(const json::value* v, std::vector<channel_pattern>& out) {
  if (!v) return true;
  if (!v->is_array()) return false;
  for (auto& e : v->get_array()) {
    if (!e.is_string()) return false;
    auto p = channel_pattern::parse(e.get_string());
    if (!p) return false;
    out.push_back(std::move(*p));
  }
  return true;
}

}  // namespace

bool grants::can_subscribe(std::string_view channel) const noexcept { return any_match(subscribe, channel); }
bool grants::can_publish(std::string_view channel) const noexcept { return any_match(publish, channel); }

std::string to_json(const grants& g) {
  json::object o;
  o["user"] = g.user;
  o["exp"] = g.expires_ms;
  o["subscribe"] = to_array(g.subscribe);
  o["publish"] = to_array(g.publish);
  return json::serialize(o);
}

std::optional<grants> grants_from_json(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  grants g;
  auto* user = o.if_contains("user");
  auto* exp = o.if_contains("exp");
  if (!user || !user->is_string() || !exp || !exp->is_int64()) return std::nullopt;
  g.user = std::string(user->get_string());
  g.expires_ms = exp->get_int64();
  if (!from_array(o.if_contains("subscribe"), g.subscribe) || !from_array(o.if_contains("publish"), g.publish))
    return std::nullopt;
  return g;
}

}  // namespace herald::auth
