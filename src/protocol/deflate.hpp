#pragma once
// permessage-deflate (RFC 7692) payload codec, without context takeover in either
// direction: every message is compressed on its own, which is what lets one compressed
// push be shared by every subscriber. Thread-safe (one zlib stream per thread).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace herald::protocol {

/// Compresses a whole message payload (raw deflate, the trailing 00 00 FF FF removed).
std::string deflate_message(std::string_view payload);

/// Inflates a compressed message payload; nullopt when the data is not valid deflate
/// or would inflate past `max_bytes` (a decompression bomb is stopped there).
std::optional<std::string> inflate_message(std::string_view compressed, std::size_t max_bytes);

}  // namespace herald::protocol
