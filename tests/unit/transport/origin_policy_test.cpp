#include "transport/origin_policy.hpp"

#include <gtest/gtest.h>

using herald::transport::check_origin;
using herald::transport::options;

namespace {
std::string header(const herald::transport::origin_verdict& v, std::string_view name) {
  for (auto& [k, val] : v.headers)
    if (k == name) return val;
  return "";
}
}  // namespace

TEST(OriginPolicy, TheOwnOriginNeedsTheSameSchemeAndHost) {
  options o;
  o.allowed_origins = {"https://app.example"};
  EXPECT_FALSE(check_origin("http://herald.example:8080", "herald.example:8080", o).cross_origin);
  EXPECT_FALSE(check_origin("HTTP://Herald.Example:8080", "herald.example:8080", o).cross_origin);
  // An https page is another origin than the plain-http server on the same host.
  auto v = check_origin("https://herald.example:8080", "herald.example:8080", o);
  EXPECT_TRUE(v.cross_origin);
  EXPECT_FALSE(v.allowed);
  o.scheme = "https";  // a TLS listener
  EXPECT_FALSE(check_origin("https://herald.example:8080", "herald.example:8080", o).cross_origin);
  EXPECT_TRUE(check_origin("http://herald.example:8080", "herald.example:8080", o).cross_origin);
}

TEST(OriginPolicy, TheNullOriginIsNeverGrantedCredentials) {
  options o;
  o.allowed_origins = {"*"};
  auto open = check_origin("null", "h", o);
  EXPECT_TRUE(open.allowed);
  EXPECT_EQ(header(open, "Access-Control-Allow-Origin"), "*");
  o.cors_credentials = true;
  auto with_credentials = check_origin("null", "h", o);
  EXPECT_FALSE(with_credentials.allowed);
  EXPECT_TRUE(with_credentials.headers.empty());
  // A real origin still gets its own name echoed with credentials.
  auto app = check_origin("https://app.example", "h", o);
  EXPECT_TRUE(app.allowed);
  EXPECT_EQ(header(app, "Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(header(app, "Access-Control-Allow-Credentials"), "true");
}
