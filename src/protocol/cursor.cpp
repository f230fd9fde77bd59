#include "protocol/cursor.hpp"

#include <array>

namespace herald::protocol {
namespace {

constexpr std::uint8_t cursor_version = 1;
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_b64_rev() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(b64[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto b64_rev = make_b64_rev();

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

  std::string out;
  out.reserve((raw.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= raw.size(); i += 3) {
    std::uint32_t n = (raw[i] << 16) | (raw[i + 1] << 8) | raw[i + 2];
    out += b64[n >> 18];
    out += b64[(n >> 12) & 63];
    out += b64[(n >> 6) & 63];
    out += b64[n & 63];
  }
  if (std::size_t rest = raw.size() - i; rest) {
    std::uint32_t n = raw[i] << 16 | (rest == 2 ? raw[i + 1] << 8 : 0);
    out += b64[n >> 18];
    out += b64[(n >> 12) & 63];
    if (rest == 2) out += b64[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::vector<cursor_entry>> decode_cursor(std::string_view token) {
  if (token.empty() || token.size() > max_cursor_chars || token.size() % 4 == 1) return std::nullopt;
  std::vector<std::uint8_t> raw;
  raw.reserve(token.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : token) {
    int v = b64_rev[c];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      raw.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  if (bits && (acc & ((1u << bits) - 1))) return std::nullopt;  // non-canonical tail
  if (raw.size() < 3 || raw[0] != cursor_version) return std::nullopt;
  std::size_t body = raw.size() - 2;
  std::uint32_t check = fnv1a(raw.data(), body);
  if (raw[body] != static_cast<std::uint8_t>(check) ||
      raw[body + 1] != static_cast<std::uint8_t>(check >> 8))
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
