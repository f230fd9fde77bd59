#include "broker/redis/redis_broker_options.hpp"

#include <stdexcept>
#include <string_view>

#include "util/parse_decimal.hpp"

namespace herald::broker {

namespace {
bool parse_port(std::string_view s, int& out) {
  const auto v = util::parse_decimal(s, 65535);
  if (v) out = static_cast<int>(*v);
  return v.has_value();
}
}  // namespace

std::vector<redis_endpoint> parse_redis_urls(const std::string& spec) {
  std::vector<redis_endpoint> out;
  std::string_view rest = spec;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view url = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme))
      throw std::invalid_argument("expected redis://HOST:PORT, got \"" + std::string(url) + "\"");
    url.remove_prefix(scheme.size());
    if (url.ends_with("/")) url.remove_suffix(1);
    redis_endpoint e;
    auto colon = url.rfind(':');
    e.host = std::string(url.substr(0, colon));
    if (colon != std::string_view::npos &&
        (!parse_port(url.substr(colon + 1), e.port) || e.port <= 0 || e.port > 65535))
      throw std::invalid_argument("bad port in \"" + std::string(url) + "\"");
    if (e.host.empty()) throw std::invalid_argument("missing host in a redis:// URL");
    out.push_back(std::move(e));
  }
  if (out.empty()) throw std::invalid_argument("no redis:// URL given");
  return out;
}

}  // namespace herald::broker
