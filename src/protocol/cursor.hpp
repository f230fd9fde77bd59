#pragma once
// The cursor: an opaque, URL-safe token naming a position in one or more channels.
//
// Binary layout (docs/protocol.md has the full description and sizes):
//   version byte (1)
//   per channel: tag (4 bytes, FNV-1a of the channel name, little endian)
//                epoch (4 bytes, little endian)
//                offset (LEB128 varint: the last offset the holder has seen)
//   check (2 bytes: FNV-1a of everything before, truncated)
// then base64url without padding. Channels are matched by tag, so a cursor stays
// small whatever the names' length; the check rejects corrupted or typed-in tokens.
//
// The compact form (one channel, written in the raw wire formats, where every byte of a
// message counts): 15 to 24 base64url characters read as one bit string, most
// significant bit first:
//   marker `10` (2 bits; a version 1 token starts with six zero bits, "A")
//   tag (32) | epoch (32) | offset (6n - 78 bits for n characters, as few as fit)
//   check (12 bits: low bits of FNV-1a over the first n - 2 characters)
// 15 characters up to offset 4095, 16 up to 262 143, one more per 6 bits of offset.
// decode_cursor() reads both forms wherever a cursor is accepted.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace herald::protocol {

inline constexpr std::size_t max_cursor_chars = 1024;

struct cursor_entry {
  std::uint32_t tag = 0;     // channel_tag(name)
  std::uint32_t epoch = 0;   // life of the channel's history
  std::uint64_t offset = 0;  // last offset seen (0: nothing yet)
  friend bool operator==(const cursor_entry&, const cursor_entry&) = default;
};

/// The 32-bit tag that stands for a channel name inside cursors.
std::uint32_t channel_tag(std::string_view channel) noexcept;

/// Encodes entries into the URL-safe token.
std::string encode_cursor(std::span<const cursor_entry> entries);

/// Encodes one entry in the compact form (above).
std::string encode_compact_cursor(const cursor_entry& entry);

/// The cursor the raw formats write: the compact form for one entry, else the long form.
std::string encode_raw_cursor(std::span<const cursor_entry> entries);

/// Decodes a token (either form); nullopt when it is malformed, too long, of an unknown
/// version or fails its check.
std::optional<std::vector<cursor_entry>> decode_cursor(std::string_view token);

}  // namespace herald::protocol
