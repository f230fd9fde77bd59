#pragma once
// A configured secret (the API key) kept as its SHA-256 digest, so that checking a
// presented value compares two 32-byte digests in constant time (CRYPTO_memcmp): neither
// the secret's length nor the position of the first differing byte shows in the timing.
#include <array>
#include <string_view>

namespace herald::auth {

class secret_digest {
 public:
  explicit secret_digest(std::string_view secret);
  /// True when `presented` is the secret.
  bool matches(std::string_view presented) const;

 private:
  std::array<unsigned char, 32> digest_{};
};

}  // namespace herald::auth
