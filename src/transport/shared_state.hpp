#pragma once
// What every connection of the node shares: the core, the API handlers and the limits.
#include "api/api_handlers.hpp"
#include "core/context.hpp"
#include "transport/options.hpp"

namespace herald::transport {

struct shared_state {
  core::context& core;
  api::handlers& api;
  const options& opts;
  const api::options& api_opts;
};

}  // namespace herald::transport
