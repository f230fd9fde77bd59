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

// --- The compact one-channel form ---------------------------------------------------

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t compact_min = 15, compact_max = 24;
constexpr unsigned compact_fixed_bits = 2 + 64 + 12;  // marker, tag, epoch, check

int sextet(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::uint32_t compact_check(std::string_view body) noexcept {
  return fnv1a(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()) & 0xfff;
}

// Bits of the offset field for a token of n characters.
unsigned offset_bits(std::size_t n) noexcept { return static_cast<unsigned>(6 * n - compact_fixed_bits); }

std::optional<std::vector<cursor_entry>> decode_compact(std::string_view token) {
  const std::size_t n = token.size();
  if (n < compact_min || n > compact_max) return std::nullopt;
  std::uint8_t v[compact_max];
  for (std::size_t i = 0; i < n; ++i) {
    int x = sextet(token[i]);
    if (x < 0) return std::nullopt;
    v[i] = static_cast<std::uint8_t>(x);
  }
  // Reads `bits` bits starting at bit `pos` (of the whole token) as an integer;
  // at most 64 bits of value (the offset field's surplus bits are checked below).
  auto read = [&](unsigned pos, unsigned bits) {
    std::uint64_t r = 0;
    for (unsigned b = pos; b < pos + bits; ++b) r = (r << 1) | ((v[b / 6] >> (5 - b % 6)) & 1u);
    return r;
  };
  if (read(0, 2) != 2) return std::nullopt;
  const unsigned k = offset_bits(n);
  if (k > 64 && read(66, k - 64) != 0) return std::nullopt;  // over 64 bits
  const unsigned skip = k > 64 ? k - 64 : 0;
  cursor_entry e{static_cast<std::uint32_t>(read(2, 32)), static_cast<std::uint32_t>(read(34, 32)),
                 read(66 + skip, k - skip)};
  // One spelling per position: a shorter token would have held this offset.
  if (n > compact_min && offset_bits(n - 1) < 64 && e.offset < (std::uint64_t{1} << offset_bits(n - 1)))
    return std::nullopt;
  if (read(static_cast<unsigned>(6 * n - 12), 12) != compact_check(token.substr(0, n - 2))) return std::nullopt;
  return std::vector<cursor_entry>{e};
}

}  // namespace

std::string encode_compact_cursor(const cursor_entry& e) {
  std::size_t n = compact_min;
  while (offset_bits(n) < 64 && e.offset >= (std::uint64_t{1} << offset_bits(n))) ++n;
  const unsigned k = offset_bits(n);
  std::string out(n, 'A');
  unsigned pos = 0;
  auto put = [&](std::uint64_t value, unsigned bits) {
    for (unsigned i = bits; i-- > 0; ++pos) {
      const unsigned bit = i < 64 ? static_cast<unsigned>((value >> i) & 1u) : 0u;
      if (bit) out[pos / 6] = alphabet[sextet(out[pos / 6]) | (1 << (5 - pos % 6))];
    }
  };
  put(2, 2);
  put(e.tag, 32);
  put(e.epoch, 32);
  put(e.offset, k);
  put(compact_check(std::string_view(out).substr(0, n - 2)), 12);
  return out;
}

std::string encode_raw_cursor(std::span<const cursor_entry> entries) {
  return entries.size() == 1 ? encode_compact_cursor(entries.front()) : encode_cursor(entries);
}

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
  if (int first = sextet(token[0]); first >= 0 && (first >> 4) == 2) return decode_compact(token);
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
