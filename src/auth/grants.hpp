#pragma once
// What a token grants a connection: who it is, until when, and which channels it may
// subscribe to and publish on. Patterns are exact channel names, or a prefix ending in
// `*` (`chat:*`, `user.42.*`; `*` alone is every channel).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::auth {

struct channel_pattern {
  std::string text;     // without the trailing '*'
  bool prefix = false;  // text was followed by '*'

  static std::optional<channel_pattern> parse(std::string_view s);
  bool matches(std::string_view channel) const noexcept;
  std::string str() const { return prefix ? text + '*' : text; }
};

struct grants {
  std::string user;             // the token's "sub" claim (may be empty)
  std::int64_t expires_ms = 0;  // unix ms; 0: never
  std::vector<channel_pattern> subscribe;
  std::vector<channel_pattern> publish;

  bool can_subscribe(std::string_view channel) const noexcept;
  bool can_publish(std::string_view channel) const noexcept;
  bool expired(std::int64_t now_ms) const noexcept { return expires_ms != 0 && now_ms >= expires_ms; }
};

/// Compact JSON form (how a ticket carries its grants through the broker).
std::string to_json(const grants& g);
/// Reads to_json()'s output back; nullopt when it is not that shape.
std::optional<grants> grants_from_json(std::string_view json);

}  // namespace herald::auth
