#include "protocol/cursor.hpp"

#include <array>

#include "protocol/base64url.hpp"

namespace herald::protocol {
namespace {

constexpr std::uint8_t cursor_version = 1;
std::uint32_t fnv1a(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

std::uint32_t channel_tag(std::string_view channel) noexcept {
  return fnv1a(reinterpret_cast<const std::uint8_t*>(channel.data()), channel.size());
}

std::string encode_cursor(std::span<const cursor_entry> entries) {
  std::vector<std::uint8_t> raw;
  raw.reserve(1 + entries.size() * 18 + 2);
  raw.push_back(cursor_version);
  for (const auto& e : entries) {
    put_u32(raw, e.tag);
    put_u32(raw, e.epoch);
    std::uint64_t v = e.offset;
    do {
      std::uint8_t b = v & 0x7f;
      v >>= 7;
      raw.push_back(v ? (b | 0x80) : b);
    } while (v);
  }
  std::uint32_t check = fnv1a(raw.data(), raw.size());
  raw.push_back(static_cast<std::uint8_t>(check));
  raw.push_back(static_cast<std::uint8_t>(check >> 8));

  return base64url_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

std::optional<std::vector<cursor_entry>> decode_cursor(std::string_view token) {
  if (token.empty() || token.size() > max_cursor_chars) return std::nullopt;
  auto decoded = base64url_decode(token);
  if (!decoded) return std::nullopt;
  const auto* raw = reinterpret_cast<const std::uint8_t*>(decoded->data());
  const std::size_t raw_size = decoded->size();
  if (raw_size < 3 || raw[0] != cursor_version) return std::nullopt;
  std::size_t body = raw_size - 2;
  std::uint32_t check = fnv1a(raw, body);
  if (raw[body] != static_cast<std::uint8_t>(check) || raw[body + 1] != static_cast<std::uint8_t>(check >> 8))
    return std::nullopt;

  std::vector<cursor_entry> entries;
  std::size_t p = 1;
  auto u32 = [&](std::uint32_t& v) {
    if (body - p < 4) return false;
    v = raw[p] | raw[p + 1] << 8 | raw[p + 2] << 16 | static_cast<std::uint32_t>(raw[p + 3]) << 24;
    p += 4;
    return true;
  };
  while (p < body) {
    cursor_entry e;
    if (!u32(e.tag) || !u32(e.epoch)) return std::nullopt;
    int shift = 0;
    for (;;) {
      if (p >= body || shift > 63) return std::nullopt;
      std::uint8_t b = raw[p++];
      if (shift == 63 && (b & 0x7e)) return std::nullopt;  // overflows 64 bits
      e.offset |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    entries.push_back(e);
  }
  if (entries.empty()) return std::nullopt;
  return entries;
}

}  // namespace herald::protocol
