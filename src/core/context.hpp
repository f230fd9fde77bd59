#pragma once
// What a connection needs from the core: the hub, the broker and the namespace policy.
#include "core/broker.hpp"
#include "core/hub.hpp"
#include "core/namespace_options.hpp"

namespace herald::core {

struct context {
  hub& hubs;
  broker& brokers;
  const namespace_table& namespaces;
};

}  // namespace herald::core
