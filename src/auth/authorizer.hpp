#pragma once
// Who may do what: authenticates a connection (a JWT in `Authorization: Bearer`, or a
// single-use ticket in the URL for clients that cannot set headers) and decides each
// subscribe and publish from the channel's namespace policy and the token's grants.
//
// Rights: a client without a token may subscribe where its namespace allows anonymous
// clients, and publish where it also allows client publishing. A token adds its own
// `subscribe` / `publish` patterns to that. A namespace's max_subscribers caps each of
// its channels on this node.
//
// Tickets: POST /ticket (with a token) stores the token's grants in the broker under a
// random 192-bit id for ticket_ttl; the first connection that presents it takes it
// (GETDEL on Redis, so on any node, once). A connection opened with a ticket keeps the
// token's expiry.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "auth/grants.hpp"
#include "auth/jwt.hpp"
#include "core/context.hpp"
#include "util/api_error.hpp"

namespace herald::auth {

struct options {
  keyset keys;  // empty: tokens are not accepted (every client is anonymous)
  token_policy policy;
  std::chrono::seconds ticket_ttl{30};
};

/// A connection's identity: its grants, or null for a client without a token.
using identity = std::shared_ptr<const grants>;

/// What a request presented.
struct credentials {
  std::string_view authorization;  // the Authorization header, or empty
  std::string_view ticket;         // the `ticket` query parameter, or empty
};

class authorizer {
 public:
  using auth_result = std::variant<identity, util::api_error>;
  using ticket_result = std::variant<std::string, util::api_error>;

  authorizer(core::context& ctx, options opts);

  bool tokens_enabled() const noexcept { return !opts_.keys.empty(); }
  std::chrono::seconds ticket_ttl() const noexcept { return opts_.ticket_ttl; }

  /// Identifies the client. Without credentials: anonymous, inline. A token: verified
  /// inline. A ticket: taken from the broker, `done` may run on a broker thread.
  /// Refusals: 401 (token_invalid, token_expired, token_not_yet_valid, ticket_invalid),
  /// 400 when both a token and a ticket are given.
  void authenticate(const credentials& c, std::function<void(auth_result)> done) const;

  /// Verifies the token of an Authorization header (for POST /ticket).
  auth_result verify_bearer(std::string_view authorization) const;

  /// Stores `g` as a new ticket; `done` gets its id (possibly on a broker thread).
  void issue_ticket(const grants& g, std::function<void(ticket_result)> done) const;

  /// nullopt when `who` may read `channel` (subscribe, history); else 401 (no token and
  /// the namespace wants one) or 403 (the token does not grant it).
  std::optional<util::api_error> may_read(const identity& who, std::string_view channel) const;
  /// may_read(), and 429 when the channel has its namespace's max subscribers here.
  std::optional<util::api_error> may_subscribe(const identity& who, std::string_view channel) const;
  /// nullopt when `who` may publish on `channel`; else 401 or 403.
  std::optional<util::api_error> may_publish(const identity& who, std::string_view channel) const;

 private:
  core::context& ctx_;
  options opts_;
};

}  // namespace herald::auth
