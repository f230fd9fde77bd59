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

redis_endpoint host_port(std::string_view url, int default_port) {
  if (url.ends_with("/")) url.remove_suffix(1);
  redis_endpoint e;
  e.port = default_port;
  auto colon = url.rfind(':');
  e.host = std::string(url.substr(0, colon));
  if (colon != std::string_view::npos && (!parse_port(url.substr(colon + 1), e.port) || e.port <= 0))
    throw std::invalid_argument("bad port in \"" + std::string(url) + "\"");
  if (e.host.empty()) throw std::invalid_argument("missing host in \"" + std::string(url) + "\"");
  return e;
}

// Calls fn for each comma-separated item of spec.
template <class Fn>
void each_item(std::string_view rest, Fn fn) {
  while (!rest.empty()) {
    auto comma = rest.find(',');
    fn(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
}

}  // namespace

std::vector<redis_endpoint> parse_redis_urls(const std::string& spec) {
  std::vector<redis_endpoint> out;
  each_item(spec, [&](std::string_view url) {
    constexpr std::string_view redis_scheme = "redis://";
    constexpr std::string_view sentinel_scheme = "sentinel://";
    if (url.starts_with(sentinel_scheme)) {
      url.remove_prefix(sentinel_scheme.size());
      if (url.ends_with("/")) url.remove_suffix(1);
      if (url.empty() || url.find_first_of(" /:") != std::string_view::npos)
        throw std::invalid_argument("expected sentinel://MASTER_NAME, got \"sentinel://" + std::string(url) + "\"");
      redis_endpoint e;
      e.master = std::string(url);
      out.push_back(std::move(e));
      return;
    }
    if (!url.starts_with(redis_scheme))
      throw std::invalid_argument("expected redis://HOST:PORT or sentinel://NAME, got \"" + std::string(url) + "\"");
    url.remove_prefix(redis_scheme.size());
    out.push_back(host_port(url, 6379));
  });
  if (out.empty()) throw std::invalid_argument("no redis:// URL given");
  return out;
}

std::vector<redis_endpoint> parse_host_ports(const std::string& spec, int default_port) {
  std::vector<redis_endpoint> out;
  each_item(spec, [&](std::string_view item) { out.push_back(host_port(item, default_port)); });
  return out;
}

}  // namespace herald::broker
