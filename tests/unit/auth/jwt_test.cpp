// Token verification: what is accepted, and every way a forged, stale or confused
// token is refused.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>

#include "auth/jwt.hpp"
#include "protocol/base64url.hpp"

namespace herald::auth {
namespace {

using protocol::base64url_decode;
using protocol::base64url_encode;

const std::string secret = "0123456789abcdef0123456789abcdef-secret";
const std::string other_secret = "another-secret-of-at-least-32-bytes!!";
constexpr std::int64_t now_ms = 1'800'000'000'000;  // fixed clock: 2027
const std::string now_s = "1800000000";

keyset hs_keys() {
  keyset k;
  k.add("hs256:" + secret);
  return k;
}

std::string error_code(const std::variant<grants, util::api_error>& r) {
  auto* e = std::get_if<util::api_error>(&r);
  return e ? e->code : "";
}

// An RSA key pair made for the test: sign with the private key, verify with the PEM.
struct rsa_pair {
  std::shared_ptr<EVP_PKEY> key{EVP_RSA_gen(2048), EVP_PKEY_free};
  std::string public_pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), key.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  }
  std::string sign(std::string_view claims, std::string_view alg = "RS256") const {
    std::string part = base64url_encode(R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})") + "." +
                       base64url_encode(claims);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get());
    std::size_t len = 0;
    EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(part.data()), part.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(part.data()), part.size());
    sig.resize(len);
    return part + "." + base64url_encode(sig);
  }
};

TEST(Jwt, Base64urlRoundTripsAndRejectsOtherAlphabets) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\xff\x00\xfe", 3)})
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  EXPECT_FALSE(base64url_decode("ab+c"));
  EXPECT_FALSE(base64url_decode("ab/c"));
  EXPECT_FALSE(base64url_decode("abc="));
  EXPECT_FALSE(base64url_decode("a"));
  EXPECT_FALSE(base64url_decode("ab"  "Z"));  // leftover bits set: not canonical
}

TEST(Jwt, Hs256TokenGrantsItsClaims) {
  auto t = sign_hs256(R"({"sub":"alice","exp":)" + std::to_string(1'800'000'060) +
                          R"(,"subscribe":["news","chat:*"],"publish":["chat:room1"]})",
                      secret);
  auto r = verify_token(t, hs_keys(), {}, now_ms);
  ASSERT_TRUE(std::holds_alternative<grants>(r)) << error_code(r);
  auto& g = std::get<grants>(r);
  EXPECT_EQ(g.user, "alice");
  EXPECT_EQ(g.expires_ms, 1'800'000'060'000);
  EXPECT_TRUE(g.can_subscribe("news"));
  EXPECT_FALSE(g.can_subscribe("newsroom"));
  EXPECT_TRUE(g.can_subscribe("chat:anything"));
  EXPECT_FALSE(g.can_subscribe("chatx"));
  EXPECT_TRUE(g.can_publish("chat:room1"));
  EXPECT_FALSE(g.can_publish("chat:room2"));
  EXPECT_FALSE(g.expired(now_ms));
  EXPECT_TRUE(g.expired(1'800'000'060'000));
}

TEST(Jwt, AlgNoneAndOtherAlgorithmsAreRefused) {
  const std::string claims = base64url_encode(R"({"sub":"mallory","subscribe":["*"]})");
  for (std::string alg : {"none", "None", "NONE", "HS512", "RS512", "ES256", "PS256", ""}) {
    std::string t = base64url_encode(R"({"alg":")" + alg + R"("})") + "." + claims + ".";
    EXPECT_EQ(error_code(verify_token(t, hs_keys(), {}, now_ms)), "token_invalid") << alg;
  }
  std::string no_alg = base64url_encode(R"({"typ":"JWT"})") + "." + claims + ".";
  EXPECT_EQ(error_code(verify_token(no_alg, hs_keys(), {}, now_ms)), "token_invalid");
}

TEST(Jwt, BadSignaturesAreRefused) {
  auto good = sign_hs256(R"({"sub":"alice"})", secret);
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(good, hs_keys(), {}, now_ms)));
  EXPECT_EQ(error_code(verify_token(sign_hs256(R"({"sub":"alice"})", other_secret), hs_keys(), {}, now_ms)),
            "token_invalid");
  // The claims changed after signing.
  auto dot1 = good.find('.'), dot2 = good.rfind('.');
  auto forged = good.substr(0, dot1 + 1) + base64url_encode(R"({"sub":"admin","subscribe":["*"]})") + good.substr(dot2);
  EXPECT_EQ(error_code(verify_token(forged, hs_keys(), {}, now_ms)), "token_invalid");
  // Signature cut, emptied, or a part missing.
  EXPECT_EQ(error_code(verify_token(good.substr(0, good.size() - 2), hs_keys(), {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token(good.substr(0, dot2 + 1), hs_keys(), {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token(good.substr(0, dot2), hs_keys(), {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token(good + ".x", hs_keys(), {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token("", hs_keys(), {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token(std::string(max_token_bytes + 1, 'a'), hs_keys(), {}, now_ms)), "token_invalid");
}

TEST(Jwt, ExpiryNotBeforeAndLeeway) {
  auto expired = sign_hs256(R"({"exp":)" + std::to_string(1'800'000'000 - 1) + "}", secret);
  EXPECT_EQ(error_code(verify_token(expired, hs_keys(), {}, now_ms)), "token_expired");
  auto at_now = sign_hs256(R"({"exp":)" + now_s + "}", secret);
  EXPECT_EQ(error_code(verify_token(at_now, hs_keys(), {}, now_ms)), "token_expired");
  auto future = sign_hs256(R"({"nbf":)" + std::to_string(1'800'000'010) + "}", secret);
  EXPECT_EQ(error_code(verify_token(future, hs_keys(), {}, now_ms)), "token_not_yet_valid");
  token_policy lenient;
  lenient.leeway = std::chrono::seconds(30);
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(expired, hs_keys(), lenient, now_ms)));
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(future, hs_keys(), lenient, now_ms)));
  auto bad_exp = sign_hs256(R"({"exp":"tomorrow"})", secret);
  EXPECT_EQ(error_code(verify_token(bad_exp, hs_keys(), {}, now_ms)), "token_invalid");
  auto fractional = sign_hs256(R"({"exp":1800000000.5})", secret);
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(fractional, hs_keys(), {}, now_ms)));
}

TEST(Jwt, IssuerAndAudienceWhenConfigured) {
  token_policy p;
  p.issuer = "https://auth.example";
  p.audience = "herald";
  auto ok = sign_hs256(R"({"iss":"https://auth.example","aud":["other","herald"]})", secret);
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(ok, hs_keys(), p, now_ms)));
  auto ok2 = sign_hs256(R"({"iss":"https://auth.example","aud":"herald"})", secret);
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(ok2, hs_keys(), p, now_ms)));
  for (std::string claims : {R"({"aud":"herald"})", R"({"iss":"https://evil.example","aud":"herald"})",
                             R"({"iss":"https://auth.example","aud":"other"})", R"({"iss":"https://auth.example"})"})
    EXPECT_EQ(error_code(verify_token(sign_hs256(claims, secret), hs_keys(), p, now_ms)), "token_invalid") << claims;
}

TEST(Jwt, InvalidChannelPatternsAreRefused) {
  for (std::string claims : {R"({"subscribe":"news"})", R"({"subscribe":["bad channel"]})",
                             R"({"publish":[1]})", R"({"subscribe":["a*b"]})", R"({"sub":42})"})
    EXPECT_EQ(error_code(verify_token(sign_hs256(claims, secret), hs_keys(), {}, now_ms)), "token_invalid") << claims;
  auto all = verify_token(sign_hs256(R"({"subscribe":["*"]})", secret), hs_keys(), {}, now_ms);
  ASSERT_TRUE(std::holds_alternative<grants>(all));
  EXPECT_TRUE(std::get<grants>(all).can_subscribe("any:channel"));
}

TEST(Jwt, KeyRotationAndKeyIds) {
  keyset k;
  k.add("old=hs256:" + secret);
  k.add("new=hs256:" + other_secret);
  // Both keys verify during a rotation; a kid picks its key.
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(sign_hs256("{}", secret, "old"), k, {}, now_ms)));
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(sign_hs256("{}", other_secret, "new"), k, {}, now_ms)));
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(sign_hs256("{}", other_secret), k, {}, now_ms)));
  // Signed with the old key but claiming the new id: refused.
  EXPECT_EQ(error_code(verify_token(sign_hs256("{}", secret, "new"), k, {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token(sign_hs256("{}", secret, "gone"), k, {}, now_ms)), "token_invalid");
  // A key without an id verifies tokens without a kid, never one naming another key.
  keyset mixed;
  mixed.add("hs256:" + secret);
  mixed.add("k2=hs256:" + other_secret);
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(sign_hs256("{}", secret), mixed, {}, now_ms)));
  EXPECT_EQ(error_code(verify_token(sign_hs256("{}", secret, "gone"), mixed, {}, now_ms)), "token_invalid");
  EXPECT_EQ(error_code(verify_token(sign_hs256("{}", secret, "k2"), mixed, {}, now_ms)), "token_invalid");
  EXPECT_TRUE(std::holds_alternative<grants>(verify_token(sign_hs256("{}", other_secret, "k2"), mixed, {}, now_ms)));
}

// An HS256 token with the header exactly as given (sign_hs256 writes no empty kid).
std::string sign_with_header(std::string_view header_json, std::string_view claims, std::string_view key) {
  const std::string part = base64url_encode(header_json) + "." + base64url_encode(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(part.data()),
       part.size(), mac, &len);
  return part + "." + base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

TEST(Jwt, AnEmptyKidIsRefusedNotTriedAgainstEveryKey) {
  keyset k;
  k.add("old=hs256:" + secret);
  k.add("hs256:" + other_secret);
  EXPECT_TRUE(std::holds_alternative<grants>(
      verify_token(sign_with_header(R"({"alg":"HS256","kid":"old"})", "{}", secret), k, {}, now_ms)));
  for (const auto& key : {secret, other_secret})
    EXPECT_EQ(error_code(verify_token(sign_with_header(R"({"alg":"HS256","kid":""})", "{}", key), k, {}, now_ms)),
              "token_invalid");
}

TEST(Jwt, Rs256VerifiesWithThePublicKeyAndRefusesAlgorithmConfusion) {
  rsa_pair pair;
  keyset k;
  k.add_rs256_pem("", pair.public_pem());
  auto r = verify_token(pair.sign(R"({"sub":"bob","subscribe":["x"]})"), k, {}, now_ms);
  ASSERT_TRUE(std::holds_alternative<grants>(r)) << error_code(r);
  EXPECT_EQ(std::get<grants>(r).user, "bob");
  // The classic attack: HS256 with the RSA public key as the HMAC secret.
  EXPECT_EQ(error_code(verify_token(sign_hs256(R"({"sub":"mallory"})", pair.public_pem()), k, {}, now_ms)),
            "token_invalid");
  // Another key pair's signature.
  rsa_pair other;
  EXPECT_EQ(error_code(verify_token(other.sign(R"({"sub":"bob"})"), k, {}, now_ms)), "token_invalid");
  // An HS256 key set does not take RS256 tokens.
  EXPECT_EQ(error_code(verify_token(pair.sign(R"({"sub":"bob"})"), hs_keys(), {}, now_ms)), "token_invalid");
}

TEST(Jwt, KeySpecsAreChecked) {
  keyset k;
  EXPECT_THROW(k.add("hs256:short"), std::invalid_argument);
  EXPECT_THROW(k.add("hs512:" + secret), std::invalid_argument);
  EXPECT_THROW(k.add(secret), std::invalid_argument);
  EXPECT_THROW(k.add("bad kid=hs256:" + secret), std::invalid_argument);
  EXPECT_THROW(k.add("rs256:not a pem"), std::invalid_argument);
  EXPECT_THROW(k.add("rs256:@/nonexistent/key.pem"), std::invalid_argument);
  try {
    k.add("hs512:" + secret);
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << "the error must not echo the secret";
  }
  EXPECT_TRUE(k.empty());
}

TEST(Grants, JsonRoundTripKeepsEverything) {
  grants g;
  g.user = "carol";
  g.expires_ms = 1'800'000'000'000;
  g.subscribe = {*channel_pattern::parse("a"), *channel_pattern::parse("b:*")};
  g.publish = {*channel_pattern::parse("*")};
  auto back = grants_from_json(to_json(g));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->user, "carol");
  EXPECT_EQ(back->expires_ms, g.expires_ms);
  EXPECT_TRUE(back->can_subscribe("b:x"));
  EXPECT_FALSE(back->can_subscribe("c"));
  EXPECT_TRUE(back->can_publish("anything"));
  EXPECT_FALSE(grants_from_json("{}"));
  EXPECT_FALSE(grants_from_json("not json"));
}

}  // namespace
}  // namespace herald::auth
