#include "transport/origin_policy.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>

namespace herald::transport {

namespace {

// Same origin: the scheme clients reach herald by, and the Host they named. An
// "https://host" page is another origin than "http://host" (RFC 6454 4).
bool same_origin(std::string_view origin, std::string_view host, std::string_view scheme) {
  auto p = origin.find("://");
  if (p == std::string_view::npos || host.empty()) return false;
  return boost::beast::iequals(origin.substr(0, p), scheme) && boost::beast::iequals(origin.substr(p + 3), host);
}

}  // namespace

origin_verdict check_origin(std::string_view origin, std::string_view host, const options& opts) {
  origin_verdict v;
  if (origin.empty() || same_origin(origin, host, opts.scheme)) return v;
  v.cross_origin = true;
  if (opts.allowed_origins.empty()) return v;
  const bool any =
      std::find(opts.allowed_origins.begin(), opts.allowed_origins.end(), "*") != opts.allowed_origins.end();
  const bool listed =
      std::find(opts.allowed_origins.begin(), opts.allowed_origins.end(), origin) != opts.allowed_origins.end();
  // "null" is the opaque origin of sandboxed frames, file: pages and redirects: any page
  // can take it, so it is never granted credentials (it cannot be listed either).
  const bool opaque = origin == "null";
  if ((!any && !listed) || (opaque && opts.cors_credentials)) {
    v.allowed = false;
    return v;
  }
  if (any && !opts.cors_credentials) {
    v.headers.emplace_back("Access-Control-Allow-Origin", "*");
  } else {
    v.headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
    v.headers.emplace_back("Vary", "Origin");
    if (opts.cors_credentials) v.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  }
  return v;
}

header_list preflight_headers(const origin_verdict& v) {
  header_list h = v.headers;
  h.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  h.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control");
  h.emplace_back("Access-Control-Max-Age", "600");
  return h;
}

}  // namespace herald::transport
