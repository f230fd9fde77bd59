#pragma once
// The one parser of unsigned integers from text (query parameters, config values):
// ASCII digits only (no sign, no spaces, no "0x", not empty), value at most `max`.
// std::from_chars and strtoll each accept more than that (a sign, leading spaces).
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace herald::util {

/// Query integers are bounded like JSON integers clients can hold: at most 2^63-1 (19
/// digits); each parameter then caps its value at its own maximum.
inline constexpr std::uint64_t query_integer_max = std::numeric_limits<std::int64_t>::max();

constexpr std::optional<std::uint64_t> parse_decimal(
    std::string_view s, std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10) return std::nullopt;  // v * 10 + d would pass max
    v = v * 10 + d;
  }
  return v;
}

}  // namespace herald::util
