// Fuzz target: connection-token verification (auth::verify_token, auth/jwt.hpp), against
// a fixed key set (an HS256 key without kid, another with kid "k2") and a policy that
// requires an issuer and an audience, at a fixed time.
//
// Input: byte 0 picks what the rest is, so that the fuzzer reaches past the signature:
//   0: the token itself;
//   1: the claims JSON, signed with the key without kid (sign_hs256);
//   2: header JSON '\n' claims JSON, signed with the "k2" key under that header.
//
// Properties:
//  - no crash, no undefined behaviour, on any bytes;
//  - every refusal is 401 with code token_invalid, token_expired or token_not_yet_valid,
//    and its message never contains the token, nor its signature (checked on the signed
//    tokens of modes 1 and 2);
//  - a raw token (mode 0) is accepted only when it carries a valid signature, which
//    the fuzzer cannot forge: its signed part must re-sign to the same token;
//  - accepted grants are not expired at the verification time, their patterns print
//    back as they parse, and they survive the ticket round trip (to_json and back).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "auth/grants.hpp"
#include "auth/jwt.hpp"
#include "fuzz_check.hpp"
#include "protocol/base64url.hpp"

namespace a = herald::auth;

namespace {

constexpr std::string_view key1 = "fuzz-secret-without-kid-0123456789abcdef";
constexpr std::string_view key2 = "fuzz-secret-of-kid-k2-0123456789abcdefgh";
constexpr std::int64_t now_ms = 1'800'000'000'000;

const a::keyset& keys() {
  static const a::keyset k = [] {
    a::keyset s;
    s.add_hs256("", std::string(key1));
    s.add_hs256("k2", std::string(key2));
    return s;
  }();
  return k;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

bool same_patterns(const std::vector<a::channel_pattern>& x, const std::vector<a::channel_pattern>& y) {
  if (x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i].str() != y[i].str()) return false;
  return true;
}

void check_grants(const a::grants& g) {
  FUZZ_CHECK(!g.expired(now_ms), "accepted grants are not expired");
  for (const auto* list : {&g.subscribe, &g.publish})
    for (const auto& p : *list) {
      auto again = a::channel_pattern::parse(p.str());
      FUZZ_CHECK(again && again->str() == p.str(), "a granted pattern prints back as it parses");
    }
  auto back = a::grants_from_json(a::to_json(g));
  FUZZ_CHECK(back.has_value(), "grants survive to_json");
  FUZZ_CHECK(back->user == g.user && back->expires_ms == g.expires_ms && same_patterns(back->subscribe, g.subscribe) &&
                 same_patterns(back->publish, g.publish),
             "grants read back from to_json are the same");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  using herald::protocol::base64url_encode;
  std::string token;
  switch (data[0] % 3) {
    case 0:
      token = rest;
      break;
    case 1:
      token = a::sign_hs256(rest, key1);
      break;
    default: {
      const auto nl = rest.find('\n');
      const std::string_view header = rest.substr(0, nl);
      const std::string_view claims = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      std::string signed_part = base64url_encode(header) + "." + base64url_encode(claims);
      token = signed_part + "." + base64url_encode(hmac(key2, signed_part));
    }
  }

  a::token_policy policy;
  policy.issuer = "https://issuer.example";
  policy.audience = "herald";
  policy.leeway = std::chrono::seconds(5);
  auto r = a::verify_token(token, keys(), policy, now_ms);
  if (auto* err = std::get_if<herald::util::api_error>(&r)) {
    FUZZ_CHECK(err->status == 401, "a refused token is a 401");
    FUZZ_CHECK(err->code == "token_invalid" || err->code == "token_expired" || err->code == "token_not_yet_valid",
               "a refusal has a documented code");
    FUZZ_CHECK(!err->message.empty(), "a refusal says why");
    // Checked on the tokens built here (modes 1 and 2), whose HMAC signature cannot
    // occur in a message by chance; a raw input may be a piece of a message's wording.
    if (data[0] % 3 != 0) {
      FUZZ_CHECK(err->message.find(token) == std::string::npos, "a refusal never echoes the token");
      FUZZ_CHECK(err->message.find(token.substr(token.rfind('.') + 1)) == std::string::npos,
                 "a refusal never echoes the signature");
    }
    return 0;
  }
  if (data[0] % 3 == 0) {
    // Forging a signature is out of the fuzzer's reach: an accepted raw token is one
    // that the keys sign the same way.
    const auto dot = token.rfind('.');
    FUZZ_CHECK(dot != std::string::npos, "an accepted token has a signature");
    const std::string_view signed_part = std::string_view(token).substr(0, dot);
    const std::string sig1 = base64url_encode(hmac(key1, signed_part));
    const std::string sig2 = base64url_encode(hmac(key2, signed_part));
    const std::string_view sig = std::string_view(token).substr(dot + 1);
    FUZZ_CHECK(sig == sig1 || sig == sig2, "only a validly signed token is accepted");
  }
  check_grants(std::get<a::grants>(r));
  return 0;
}
