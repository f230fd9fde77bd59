#include "auth/authorizer.hpp"

#include <openssl/rand.h>

#include "metrics/metrics.hpp"
#include "protocol/base64url.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace herald::auth {

using util::api_error;

namespace {

constexpr std::string_view ticket_prefix = "ticket:";

api_error ticket_invalid() {
  return {401, "ticket_invalid", "unknown, expired or already used ticket (get a new one from POST /ticket)"};
}

// The token of `Authorization: Bearer <token>`; nullopt for another scheme.
std::optional<std::string_view> bearer_token(std::string_view header) {
  constexpr std::string_view scheme = "bearer ";
  if (header.size() < scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return std::nullopt;
  header.remove_prefix(scheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  return header;
}

bool valid_ticket_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

authorizer::authorizer(core::context& ctx, options opts) : ctx_(ctx), opts_(std::move(opts)) {}

authorizer::auth_result authorizer::verify_bearer(std::string_view authorization) const {
  auto token = bearer_token(authorization);
  if (!token) return api_error{401, "unauthorized", "expected Authorization: Bearer <token>"};
  if (!tokens_enabled()) {
    metrics::add(metrics::counter::auth_refused);
    return api_error{401, "token_invalid", "this server accepts no tokens (no --token-key configured)"};
  }
  auto r = verify_token(*token, opts_.keys, opts_.policy, util::unix_ms());
  if (auto* e = std::get_if<api_error>(&r)) {
    metrics::add(metrics::counter::auth_refused);
    return std::move(*e);
  }
  return std::make_shared<const grants>(std::move(std::get<grants>(r)));
}

void authorizer::authenticate(const credentials& c, std::function<void(auth_result)> done) const {
  // Other schemes (e.g. Basic, added by a proxy in front) are not ours: anonymous.
  const bool has_token = !c.authorization.empty() && bearer_token(c.authorization);
  if (has_token && !c.ticket.empty())
    return done(api_error{400, "bad_request", "give either a token or a ticket, not both"});
  if (has_token) return done(verify_bearer(c.authorization));
  if (c.ticket.empty()) return done(identity{});
  if (!valid_ticket_id(c.ticket)) {
    metrics::add(metrics::counter::auth_refused);
    return done(ticket_invalid());
  }
  ctx_.brokers.take_once(std::string(ticket_prefix) + std::string(c.ticket),
                         [done = std::move(done)](core::broker::take_result r) {
                           if (auto* e = std::get_if<api_error>(&r)) return done(std::move(*e));
                           auto& value = std::get<std::optional<std::string>>(r);
                           auto g = value ? grants_from_json(*value) : std::nullopt;
                           if (!g || g->expired(util::unix_ms())) {
                             metrics::add(metrics::counter::auth_refused);
                             return done(ticket_invalid());
                           }
                           done(std::make_shared<const grants>(std::move(*g)));
                         });
}

void authorizer::issue_ticket(const grants& g, std::function<void(ticket_result)> done) const {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return done(api_error{503, "unavailable", "no randomness available for a ticket"});
  std::string id = protocol::base64url_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  ctx_.brokers.put_once(std::string(ticket_prefix) + id, to_json(g), opts_.ticket_ttl,
                        [id, done = std::move(done)](std::optional<api_error> e) {
                          if (e) return done(std::move(*e));
                          done(id);
                        });
}

std::optional<api_error> authorizer::may_read(const identity& who, std::string_view channel) const {
  const auto& ns = ctx_.namespaces.for_channel(channel);
  if (ns.personal) {
    // NS:<sub> belongs to the token whose sub it names; anybody else needs a grant.
    if (who &&
        ((!who->user.empty() && channel.substr(channel.find(':') + 1) == who->user) || who->can_subscribe(channel)))
      return std::nullopt;
    metrics::add(metrics::counter::auth_forbidden);
    if (!who)
      return api_error{401, "unauthorized",
                       "channel " + std::string(channel) + " is personal: it needs its user's token"};
    return api_error{403, "forbidden", "channel " + std::string(channel) + " is personal to another user"};
  }
  if (ns.anonymous || (who && who->can_subscribe(channel))) return std::nullopt;
  metrics::add(metrics::counter::auth_forbidden);
  if (!who) return api_error{401, "unauthorized", "channel " + std::string(channel) + " needs a token"};
  return api_error{403, "forbidden", "the token does not grant subscribing to " + std::string(channel)};
}

std::optional<api_error> authorizer::may_subscribe(const identity& who, std::string_view channel) const {
  if (auto err = may_read(who, channel)) return err;
  const auto& ns = ctx_.namespaces.for_channel(channel);
  if (ns.max_subscribers && ctx_.hubs.subscriber_count(channel) >= ns.max_subscribers) {
    metrics::add(metrics::counter::limit_max_subscribers);
    util::log::limit("max_subscribers", {{"channel", channel}});
    return api_error{429, "too_many_subscribers",
                     "channel " + std::string(channel) + " has its maximum of " + std::to_string(ns.max_subscribers) +
                         " subscribers"};
  }
  return std::nullopt;
}

std::optional<api_error> authorizer::may_publish(const identity& who, std::string_view channel) const {
  const auto& ns = ctx_.namespaces.for_channel(channel);
  if ((ns.anonymous && ns.client_publish) || (who && who->can_publish(channel))) return std::nullopt;
  metrics::add(metrics::counter::auth_forbidden);
  if (!who && ns.anonymous)
    return api_error{403, "forbidden",
                     "client publishing is not allowed in the namespace of channel " + std::string(channel)};
  if (!who) return api_error{401, "unauthorized", "publishing on " + std::string(channel) + " needs a token"};
  return api_error{403, "forbidden", "the token does not grant publishing on " + std::string(channel)};
}

}  // namespace herald::auth
