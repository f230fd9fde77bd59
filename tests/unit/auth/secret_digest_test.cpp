// The API-key check. Its timing property (constant time whatever the lengths) is by
// construction, two fixed-size digests compared with CRYPTO_memcmp, not measured here.
#include "auth/secret_digest.hpp"

#include <gtest/gtest.h>

#include <string>

using herald::auth::secret_digest;

TEST(SecretDigest, MatchesTheSecretOnly) {
  const secret_digest key("s3cret-api-key");
  EXPECT_TRUE(key.matches("s3cret-api-key"));
  EXPECT_FALSE(key.matches("s3cret-api-ke"));    // a prefix
  EXPECT_FALSE(key.matches("s3cret-api-key "));  // longer
  EXPECT_FALSE(key.matches("S3cret-api-key"));
  EXPECT_FALSE(key.matches(""));
  EXPECT_FALSE(key.matches(std::string("s3cret-api-key\0", 15)));
}

TEST(SecretDigest, HoldsNoCopyOfTheSecret) {
  // Only the digest is kept: the object is the same size whatever the secret's length.
  EXPECT_EQ(sizeof(secret_digest), 32u);
  EXPECT_TRUE(secret_digest(std::string(10000, 'k')).matches(std::string(10000, 'k')));
}
