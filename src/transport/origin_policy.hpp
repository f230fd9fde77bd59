#pragma once
// Browser origins: which pages on other origins may use /sse, /poll, /publish, /ticket
// (CORS) and open /ws (the Origin check of the handshake). One list for both,
// `allowed_origins`: exact origins ("https://app.example.com") or "*".
//
// - No Origin header (not a browser) or the request's own origin (Origin's scheme is
//   options::scheme and its host equals Host): always allowed, no CORS headers needed.
// - An empty list sets no policy: WebSocket accepts any Origin; cross-origin HTTP
//   requests are served without CORS headers (the browser keeps the reply from the page)
//   and preflights are refused.
// - Otherwise an Origin off the list is refused (403 origin_not_allowed); one on it gets
//   Access-Control-Allow-Origin (and Allow-Credentials when cors_credentials is set).
// - `Origin: null` (opaque) passes "*" only without cors_credentials.
#include <string_view>

#include "transport/http_response.hpp"
#include "transport/options.hpp"

namespace herald::transport {

struct origin_verdict {
  bool allowed = true;
  bool cross_origin = false;
  header_list headers;  // CORS headers to add to the response
};

origin_verdict check_origin(std::string_view origin, std::string_view host, const options& opts);

/// The 204 answer's headers to a preflight (OPTIONS) that check_origin() allowed.
header_list preflight_headers(const origin_verdict& v);

}  // namespace herald::transport
