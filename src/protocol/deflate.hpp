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

enum class inflate_error { none, corrupt, too_big };

/// Inflates a compressed message payload into `out`; `too_big` when it would inflate
/// past `max_bytes` (a decompression bomb is stopped there), `corrupt` when it is not
/// valid deflate data.
inflate_error inflate_message(std::string_view compressed, std::size_t max_bytes, std::string& out);

}  // namespace herald::protocol
