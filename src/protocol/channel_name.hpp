#pragma once
// Channel names as fixed by the contract: 1..255 bytes of [A-Za-z0-9_.:@/-];
// the namespace is the part before the first ':' (empty when there is none).
#include <cstddef>
#include <string_view>

namespace herald::protocol {

inline constexpr std::size_t max_channel_name = 255;

/// True when `name` is a valid channel name.
bool valid_channel_name(std::string_view name) noexcept;

/// The namespace of a channel ("chat:room1" -> "chat", "news" -> "").
std::string_view namespace_of(std::string_view channel) noexcept;

}  // namespace herald::protocol
