#pragma once
// What every connection of the node shares: the core, the API handlers, the authorizer,
// the limits and the backend hooks.
#include "api/api_handlers.hpp"
#include "auth/authorizer.hpp"
#include "core/context.hpp"
#include "transport/ip_counter.hpp"
#include "transport/options.hpp"

namespace herald::transport {

class tls_context;
class hooks;

struct shared_state {
  core::context& core;
  api::handlers& api;
  const options& opts;
  const api::options& api_opts;
  const auth::authorizer& auth;
  ip_counter& connections_per_ip;
  ip_counter& polls_per_ip;
  tls_context* tls = nullptr;  // TLS on the port (--tls-cert); null: plain TCP
  /// The backend hooks (null: none configured).
  hooks* backend_hooks = nullptr;
};

}  // namespace herald::transport
