#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace herald::broker {

struct redis_endpoint {
  std::string host;
  int port = 6379;
  /// Set for a shard whose primary Sentinel manages (`sentinel://NAME`): host and port
  /// are then found through the sentinels, and followed across failovers.
  std::string master;
};

struct redis_broker_options {
  std::vector<redis_endpoint> shards;               // channels spread by a stable hash of the name
  std::chrono::seconds meta_ttl{86400};             // a channel's epoch/offset survive this long idle
  std::chrono::milliseconds command_timeout{2000};  // unanswered this long: reconnect, 503
  std::vector<redis_endpoint> sentinels;            // asked in turn for the primaries of sentinel:// shards
  std::chrono::milliseconds sentinel_poll{500};     // how often the primary's address is asked again
};

/// Parses "redis://HOST:PORT[,redis://HOST:PORT | sentinel://NAME ...]"; throws std::invalid_argument.
std::vector<redis_endpoint> parse_redis_urls(const std::string& spec);
/// Parses "HOST:PORT[,HOST:PORT...]" (a sentinel's port defaults to 26379).
std::vector<redis_endpoint> parse_host_ports(const std::string& spec, int default_port);

}  // namespace herald::broker
