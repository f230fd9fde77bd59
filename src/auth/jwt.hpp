#pragma once
// JSON Web Tokens (RFC 7519) signed with HS256 (HMAC-SHA256) or RS256 (RSA PKCS#1 v1.5
// with SHA-256), verified with OpenSSL. Written here rather than taken from a library:
// Debian ships no maintained C++ JWT library, and what herald needs is small — compact
// serialization, two algorithms, a key set for rotation, strict checks.
//
// Checks, in order: shape and size; header `alg` must be HS256 or RS256 and match a
// configured key of that algorithm (`alg: none` and any other algorithm are refused, so
// an RSA public key can never be used as an HMAC secret); `kid`, when present, picks the
// key with that id (and no other; an unknown or empty kid is refused); the signature; then the claims `exp`, `nbf`
// (with leeway), `iss` and `aud` (when configured), `sub`, and herald's `subscribe` / `publish` channel patterns.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/grants.hpp"
#include "util/api_error.hpp"

struct evp_pkey_st;

namespace herald::auth {

enum class jwt_alg { hs256, rs256 };

struct verify_key {
  std::string kid;  // empty: tried for every token of its algorithm
  jwt_alg alg = jwt_alg::hs256;
  std::string secret;                 // HS256
  std::shared_ptr<evp_pkey_st> pkey;  // RS256 public key
};

class keyset {
 public:
  /// Adds a key from a spec `[KID=]hs256:SECRET`, `[KID=]hs256:@FILE` or
  /// `[KID=]rs256:@PUBLIC_KEY.pem` (PEM text in place of @FILE works too).
  /// Throws std::invalid_argument saying what is wrong (never echoing the secret).
  void add(std::string_view spec);
  void add_hs256(std::string kid, std::string secret);
  void add_rs256_pem(std::string kid, std::string_view pem);
  bool empty() const noexcept { return keys_.empty(); }
  const std::vector<verify_key>& keys() const noexcept { return keys_; }

 private:
  std::vector<verify_key> keys_;
};

struct token_policy {
  std::string issuer;              // required `iss` (empty: not checked)
  std::string audience;            // required in `aud` (empty: not checked)
  std::chrono::seconds leeway{0};  // clock skew allowed on exp / nbf
};

constexpr std::size_t max_token_bytes = 8192;

/// Verifies `token` at `now_ms` (unix ms). Refusals are 401 with code token_invalid,
/// token_expired or token_not_yet_valid; messages never contain the token.
std::variant<grants, util::api_error> verify_token(std::string_view token, const keyset& keys,
                                                   const token_policy& policy, std::int64_t now_ms);

/// Signs `claims_json` (for tests and tools; herald itself only verifies).
std::string sign_hs256(std::string_view claims_json, std::string_view secret, std::string_view kid = {});

}  // namespace herald::auth
