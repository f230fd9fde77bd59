#include "auth/jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>

#include "protocol/base64url.hpp"

namespace herald::auth {
namespace json = boost::json;
using protocol::base64url_decode;
using protocol::base64url_encode;
using util::api_error;

namespace {

api_error invalid(std::string why) { return {401, "token_invalid", "invalid token: " + std::move(why)}; }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument("cannot read key file \"" + path + "\"");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

bool rsa_verify(evp_pkey_st* key, std::string_view data, std::string_view sig) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

// A NumericDate (seconds, possibly fractional) as unix ms; nullopt when not a number.
std::optional<std::int64_t> numeric_date_ms(const json::value& v) {
  double s;
  if (v.is_int64())
    s = static_cast<double>(v.get_int64());
  else if (v.is_uint64())
    s = static_cast<double>(v.get_uint64());
  else if (v.is_double())
    s = v.get_double();
  else
    return std::nullopt;
  if (!std::isfinite(s) || s < 0 || s > 1e13) return std::nullopt;
  return static_cast<std::int64_t>(s * 1000);
}

bool valid_kid(std::string_view k) {
  if (k.empty() || k.size() > 64) return false;
  for (char c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

}  // namespace

void keyset::add_hs256(std::string kid, std::string secret) {
  // RFC 7518 3.2: a key at least as long as the hash output.
  if (secret.size() < 32) throw std::invalid_argument("an hs256 secret needs at least 32 bytes");
  verify_key k;
  k.kid = std::move(kid);
  k.alg = jwt_alg::hs256;
  k.secret = std::move(secret);
  keys_.push_back(std::move(k));
}

void keyset::add_rs256_pem(std::string kid, std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!raw) throw std::invalid_argument("an rs256 key must be a PEM public key (BEGIN PUBLIC KEY)");
  std::shared_ptr<evp_pkey_st> key(raw, EVP_PKEY_free);
  if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_RSA) throw std::invalid_argument("an rs256 key must be an RSA key");
  if (EVP_PKEY_get_bits(raw) < 2048) throw std::invalid_argument("an rs256 key needs at least 2048 bits");
  verify_key k;
  k.kid = std::move(kid);
  k.alg = jwt_alg::rs256;
  k.pkey = std::move(key);
  keys_.push_back(std::move(k));
}

void keyset::add(std::string_view spec) {
  auto colon = spec.find(':');
  if (colon == std::string_view::npos)
    throw std::invalid_argument("expected [KID=]hs256:SECRET, [KID=]hs256:@FILE or [KID=]rs256:@PEM_FILE");
  std::string_view head = spec.substr(0, colon), value = spec.substr(colon + 1);
  std::string kid;
  if (auto eq = head.find('='); eq != std::string_view::npos) {
    kid = std::string(head.substr(0, eq));
    head = head.substr(eq + 1);
    if (!valid_kid(kid)) throw std::invalid_argument("a key id is 1-64 characters of [A-Za-z0-9._-]");
  }
  std::string material = value.starts_with('@') ? read_file(std::string(value.substr(1))) : std::string(value);
  if (head == "hs256") {
    if (value.starts_with('@'))  // a secret file's final newline is not part of the secret
      while (!material.empty() && (material.back() == '\n' || material.back() == '\r')) material.pop_back();
    add_hs256(std::move(kid), std::move(material));
  } else if (head == "rs256") {
    add_rs256_pem(std::move(kid), material);
  } else {
    throw std::invalid_argument("unknown algorithm \"" + std::string(head.substr(0, 16)) + "\" (hs256, rs256)");
  }
}

std::variant<grants, api_error> verify_token(std::string_view token, const keyset& keys, const token_policy& policy,
                                             std::int64_t now_ms) {
  if (token.size() > max_token_bytes) return invalid("longer than " + std::to_string(max_token_bytes) + " bytes");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return invalid("expected three base64url parts separated by dots");
  auto header_text = base64url_decode(token.substr(0, dot1));
  auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!header_text || !payload_text || !signature) return invalid("a part is not base64url");

  boost::system::error_code ec;
  auto header = json::parse(*header_text, ec);
  if (ec || !header.is_object()) return invalid("the header is not a JSON object");
  auto* alg_v = header.get_object().if_contains("alg");
  if (!alg_v || !alg_v->is_string()) return invalid("the header has no alg");
  const std::string_view alg_name = alg_v->get_string();
  jwt_alg alg;
  if (alg_name == "HS256")
    alg = jwt_alg::hs256;
  else if (alg_name == "RS256")
    alg = jwt_alg::rs256;
  else if (alg_name == "none" || alg_name == "None" || alg_name == "NONE")
    return invalid("unsigned tokens (alg none) are refused");
  else
    return invalid("algorithm not accepted (HS256, RS256)");
  std::string_view kid;
  if (auto* k = header.get_object().if_contains("kid")) {
    if (!k->is_string()) return invalid("kid is not a string");
    kid = k->get_string();
    // Key ids are 1-64 characters: an empty one names no key. Refused rather than read as
    // "no kid", which would try the token against every key of its algorithm.
    if (kid.empty()) return invalid("kid is empty");
  }

  const std::string_view signed_part = token.substr(0, dot2);
  bool any_key = false, verified = false;
  for (const auto& key : keys.keys()) {
    if (key.alg != alg) continue;
    if (!kid.empty() && key.kid != kid) continue;  // a kid names its key, and only it
    any_key = true;
    if (alg == jwt_alg::hs256) {
      auto mac = hmac_sha256(key.secret, signed_part);
      verified = mac.size() == signature->size() && CRYPTO_memcmp(mac.data(), signature->data(), mac.size()) == 0;
    } else {
      verified = rsa_verify(key.pkey.get(), signed_part, *signature);
    }
    if (verified) break;
  }
  if (!any_key) return invalid(kid.empty() ? "no key for its algorithm" : "unknown key id");
  if (!verified) return invalid("bad signature");

  auto payload = json::parse(*payload_text, ec);
  if (ec || !payload.is_object()) return invalid("the claims are not a JSON object");
  const auto& claims = payload.get_object();
  const std::int64_t leeway_ms = std::chrono::milliseconds(policy.leeway).count();
  grants g;
  if (auto* exp = claims.if_contains("exp")) {
    auto ms = numeric_date_ms(*exp);
    if (!ms) return invalid("exp is not a date");
    if (now_ms >= *ms + leeway_ms) return api_error{401, "token_expired", "the token has expired"};
    g.expires_ms = *ms + leeway_ms;
  }
  if (auto* nbf = claims.if_contains("nbf")) {
    auto ms = numeric_date_ms(*nbf);
    if (!ms) return invalid("nbf is not a date");
    if (now_ms + leeway_ms < *ms) return api_error{401, "token_not_yet_valid", "the token is not valid yet (nbf)"};
  }
  if (!policy.issuer.empty()) {
    auto* iss = claims.if_contains("iss");
    if (!iss || !iss->is_string() || iss->get_string() != policy.issuer) return invalid("wrong issuer");
  }
  if (!policy.audience.empty()) {
    auto* aud = claims.if_contains("aud");
    bool ok = false;
    if (aud && aud->is_string()) ok = aud->get_string() == policy.audience;
    if (aud && aud->is_array())
      for (auto& a : aud->get_array()) ok = ok || (a.is_string() && a.get_string() == policy.audience);
    if (!ok) return invalid("wrong audience");
  }
  if (auto* sub = claims.if_contains("sub")) {
    if (!sub->is_string() || sub->get_string().size() > 256) return invalid("sub is not a string of at most 256 bytes");
    g.user = std::string(sub->get_string());
  }
  for (auto [name, out] : {std::pair{"subscribe", &g.subscribe}, std::pair{"publish", &g.publish}}) {
    auto* v = claims.if_contains(name);
    if (!v) continue;
    if (!v->is_array() || v->get_array().size() > 256)
      return invalid(std::string(name) + " is not an array of at most 256 channel patterns");
    for (auto& e : v->get_array()) {
      auto p = e.is_string() ? channel_pattern::parse(e.get_string()) : std::nullopt;
      if (!p) return invalid(std::string(name) + " holds an invalid channel pattern");
      out->push_back(std::move(*p));
    }
  }
  return g;
}

std::string sign_hs256(std::string_view claims_json, std::string_view secret, std::string_view kid) {
  std::string header = R"({"alg":"HS256","typ":"JWT")";
  if (!kid.empty()) header += ",\"kid\":\"" + std::string(kid) + "\"";
  header += '}';
  std::string signed_part = base64url_encode(header) + "." + base64url_encode(claims_json);
  return signed_part + "." + base64url_encode(hmac_sha256(secret, signed_part));
}

}  // namespace herald::auth
