#include "transport/origin_policy.hpp"

#include <algorithm>
#include <cctype>

namespace herald::transport {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// "https://host:port" → "host:port"
std::string_view origin_host(std::string_view origin) {
  auto p = origin.find("://");
  return p == std::string_view::npos ? std::string_view{} : origin.substr(p + 3);
}

}  // namespace

origin_verdict check_origin(std::string_view origin, std::string_view host, const options& opts) {
  origin_verdict v;
  if (origin.empty() || (!host.empty() && iequal(origin_host(origin), host))) return v;
  v.cross_origin = true;
  if (opts.allowed_origins.empty()) return v;
  const bool any = std::find(opts.allowed_origins.begin(), opts.allowed_origins.end(), "*") != opts.allowed_origins.end();
  const bool listed = std::find(opts.allowed_origins.begin(), opts.allowed_origins.end(), origin) != opts.allowed_origins.end();
  if (!any && !listed) {
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
