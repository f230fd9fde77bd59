#pragma once
// A Redis broker shard's state (redis_broker.cpp and redis_presence.cpp): its two
// connections and the channels this node watches on it. Broker thread only.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/redis/redis_broker.hpp"
#include "broker/redis/redis_connection.hpp"
#include "broker/redis/sentinel_watch.hpp"

namespace herald::broker {

struct redis_broker::watched {
  bool confirmed = false;
  std::vector<std::function<void()>> waiting;  // history reads waiting for the SUBSCRIBE
};

struct redis_broker::shard {
  std::unique_ptr<redis_connection> cmd;
  std::unique_ptr<redis_connection> sub;
  std::unique_ptr<sentinel_watch> sentinel;  // sentinel:// shards: where the primary is
  // The replication ID of the primary the command connection reaches (INFO replication),
  // empty until it is known to be a primary. Every script gets it: a channel last written
  // under another one may have lost writes (a failover, a restart), redis_scripts.hpp.
  std::string life;
  std::unordered_map<std::string, watched> channels;
  std::unordered_map<std::string, int> acks_pending;  // SUBSCRIBEs sent, not yet confirmed
  bool cmd_up = false, sub_up = false, resubscribing = false;
  std::int64_t cmd_down_ms = 0, sub_down_ms = 0;  // when it was lost (0: never up yet)
};

}  // namespace herald::broker
