#pragma once
// The server side of the WebSocket opening handshake (RFC 6455 section 4.2): checks the
// upgrade request (method, Upgrade/Connection tokens, version 13, a 16-byte key, the
// Origin allow-list) and negotiates permessage-deflate (RFC 7692) without context
// takeover in either direction, so one compressed push can be shared by every client.
#include <string>
#include <variant>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "transport/http_response.hpp"
#include "transport/options.hpp"
#include "util/api_error.hpp"

namespace herald::transport {

struct ws_accept {
  std::string response;  // the 101 response head
  bool deflate = false;
};

struct ws_refusal {
  util::api_error error;
  header_list headers;
};

std::variant<ws_accept, ws_refusal> ws_handshake(
    const boost::beast::http::request<boost::beast::http::string_body>& req, const options& opts);

/// base64(SHA-1(key + the RFC's GUID)), the Sec-WebSocket-Accept value.
std::string ws_accept_key(std::string_view key);

}  // namespace herald::transport
