#include "config/hook_url.hpp"

#include "config/config.hpp"
#include "util/parse_decimal.hpp"

namespace herald::config {

namespace {

void need(bool ok, const std::string& setting, const std::string& why) {
  if (!ok) throw config_error("invalid " + setting + ": " + why);
}

}  // namespace

transport::hook_endpoint parse_hook_url(const std::string& url, const std::string& setting) {
  transport::hook_endpoint e;
  if (url.empty()) return e;
  constexpr std::string_view scheme = "http://";
  need(url.starts_with(scheme), setting, "expected http://HOST[:PORT][/PATH], got \"" + url + "\"");
  std::string_view rest = std::string_view(url).substr(scheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) e.target = std::string(rest.substr(slash));
  std::size_t colon = authority.rfind(':');
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    need(close != std::string_view::npos, setting, "unclosed [ in \"" + url + "\"");
    e.host = std::string(authority.substr(1, close - 1));
    colon = close + 1 < authority.size() && authority[close + 1] == ':' ? close + 1 : std::string_view::npos;
  } else {
    e.host = std::string(authority.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    auto port = util::parse_decimal(authority.substr(colon + 1));
    need(port && *port > 0 && *port < 65536, setting, "bad port in \"" + url + "\"");
    e.port = std::to_string(*port);
  }
  need(!e.host.empty(), setting, "no host in \"" + url + "\"");
  e.url = url;
  return e;
}

}  // namespace herald::config
