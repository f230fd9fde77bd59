#pragma once
// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past
// U+10FFFF), fed in pieces so a text message split over WebSocket fragments is checked
// as it arrives and refused at the first bad byte. Hand-written: a few lines, and the
// validators in our dependencies are internal (detail) APIs.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace herald::protocol {

class utf8_validator {
 public:
  /// Feeds more bytes; false as soon as they cannot be (the start of) valid UTF-8.
  bool feed(std::string_view bytes) noexcept;
  /// True when everything fed so far ends on a character boundary.
  bool complete() const noexcept { return need_ == 0; }
  void reset() noexcept {
    need_ = 0;
    lo_ = 0x80;
    hi_ = 0xBF;
  }

 private:
  std::uint8_t need_ = 0;               // continuation bytes still expected
  std::uint8_t lo_ = 0x80, hi_ = 0xBF;  // allowed range of the next continuation byte
};

/// True when `bytes` is complete, valid UTF-8.
inline bool valid_utf8(std::string_view bytes) noexcept {
  utf8_validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace herald::protocol
