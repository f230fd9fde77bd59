#include "protocol/utf8.hpp"

#include <cstring>

namespace herald::protocol {

bool utf8_validator::feed(std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    if (need_ == 0) {
      // Fast path: eight ASCII bytes at a time.
      while (end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if (w & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      const std::uint8_t b = *p++;
      if (b < 0x80) continue;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b == 0xE0) {
        need_ = 2, lo_ = 0xA0;
      } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
        need_ = 2;
      } else if (b == 0xED) {
        need_ = 2, hi_ = 0x9F;  // no surrogates
      } else if (b == 0xF0) {
        need_ = 3, lo_ = 0x90;
      } else if (b >= 0xF1 && b <= 0xF3) {
        need_ = 3;
      } else if (b == 0xF4) {
        need_ = 3, hi_ = 0x8F;  // nothing past U+10FFFF
      } else {
        return false;
      }
    } else {
      const std::uint8_t b = *p++;
      if (b < lo_ || b > hi_) return false;
      --need_;
      lo_ = 0x80;
      hi_ = 0xBF;
    }
  }
  return true;
}

}  // namespace herald::protocol
