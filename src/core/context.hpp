#pragma once
// What a connection needs from the core: the hub, the broker, the namespace policy, the
// stream ingests and the presence registry.
#include "core/broker.hpp"
#include "core/hub.hpp"
#include "core/namespace_options.hpp"
#include "core/presence.hpp"
#include "core/stream_registry.hpp"
#include "core/user_registry.hpp"

namespace herald::core {

struct context {
  hub& hubs;
  broker& brokers;
  const namespace_table& namespaces;
  /// The byte bound of one history read made for a connection (history_query::max_bytes):
  /// what a connection may queue, so no replay or reply is built larger (0: none).
  std::size_t max_reply_bytes = 0;
  /// The live ingests of this node (POST /api/stream); null in tests that need none.
  stream_registry* streams = nullptr;
  /// Who is subscribed where presence or join_leave is on (null: not kept).
  presence_registry* presence = nullptr;
  /// The live connections of each user, for the users API (null: not kept).
  user_registry* users = nullptr;
};

}  // namespace herald::core
