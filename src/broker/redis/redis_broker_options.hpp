#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace herald::broker {

struct redis_endpoint {
  std::string host;
  int port = 6379;
};

struct redis_broker_options {
  std::vector<redis_endpoint> shards;               // channels spread by a stable hash of the name
  std::chrono::seconds meta_ttl{86400};             // a channel's epoch/offset survive this long idle
  std::chrono::milliseconds command_timeout{2000};  // unanswered this long: reconnect, 503
};

/// Parses "redis://HOST:PORT[,redis://HOST:PORT...]"; throws std::invalid_argument.
std::vector<redis_endpoint> parse_redis_urls(const std::string& spec);

}  // namespace herald::broker
