#include "auth/secret_digest.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace herald::auth {

namespace {
std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}
}  // namespace

secret_digest::secret_digest(std::string_view secret) : digest_(sha256(secret)) {}

bool secret_digest::matches(std::string_view presented) const {
  // Hashing takes time linear in the presented value only, which the client knows.
  const auto d = sha256(presented);
  return CRYPTO_memcmp(d.data(), digest_.data(), d.size()) == 0;
}

}  // namespace herald::auth
