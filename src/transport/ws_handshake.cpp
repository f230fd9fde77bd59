#include "transport/ws_handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>

#include "transport/origin_policy.hpp"

namespace herald::transport {
namespace http = boost::beast::http;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated header value lists `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  std::string_view rest = value;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    if (boost::beast::iequals(trim(rest.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

bool valid_key(std::string_view key) {
  // 16 random bytes, base64: 24 characters ending in "==".
  if (key.size() != 24 || key.substr(22) != "==") return false;
  unsigned char out[18];
  return EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(key.data()), 24) == 18;
}

// Accepts the first permessage-deflate offer we can honour with 15-bit windows and no
// context takeover.
bool negotiate_deflate(std::string_view header) {
  std::string v = lower(header);
  std::string_view rest = v;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view offer = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    auto semi = offer.find(';');
    if (trim(offer.substr(0, semi)) != "permessage-deflate") continue;
    bool ok = true;
    std::string_view params = semi == std::string_view::npos ? std::string_view{} : offer.substr(semi + 1);
    while (!params.empty() && ok) {
      auto s2 = params.find(';');
      std::string_view p = trim(params.substr(0, s2));
      params = s2 == std::string_view::npos ? std::string_view{} : params.substr(s2 + 1);
      auto eq = p.find('=');
      std::string_view name = trim(p.substr(0, eq));
      std::string_view value = eq == std::string_view::npos ? std::string_view{} : trim(p.substr(eq + 1));
      if (name == "server_no_context_takeover" || name == "client_no_context_takeover" ||
          name == "client_max_window_bits")
        continue;  // we inflate with a 15-bit window, which reads any smaller one
      if (name == "server_max_window_bits" && (value == "15" || value == "\"15\"")) continue;
      ok = false;  // a parameter we cannot honour: try the next offer
    }
    if (ok) return true;
  }
  return false;
}

}  // namespace

std::string ws_accept_key(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  // SHA1() would look the algorithm up again on every call (OpenSSL 3): fetch it once.
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  unsigned char digest[SHA_DIGEST_LENGTH];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, sha1, nullptr);
  unsigned char out[32];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}

std::variant<ws_accept, ws_refusal> ws_handshake(const http::request<http::string_body>& req, const options& opts) {
  auto refuse = [](int status, std::string code, std::string message, header_list h = {}) {
    return ws_refusal{{status, std::move(code), std::move(message)}, std::move(h)};
  };
  if (req.method() != http::verb::get)
    return refuse(405, "method_not_allowed", "use GET to open a WebSocket", {{"Allow", "GET"}});
  if (req.version() < 11) return refuse(400, "bad_request", "WebSocket needs HTTP/1.1");
  if (!has_token(req[http::field::upgrade], "websocket") || !has_token(req[http::field::connection], "upgrade"))
    return refuse(426, "upgrade_required", "/ws expects a WebSocket upgrade request",
                  {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}});
  if (req[http::field::sec_websocket_version] != "13")
    return refuse(426, "upgrade_required", "unsupported Sec-WebSocket-Version (13 is)",
                  {{"Sec-WebSocket-Version", "13"}});
  const auto key = req[http::field::sec_websocket_key];
  if (!valid_key(key)) return refuse(400, "bad_request", "missing or malformed Sec-WebSocket-Key");
  if (!check_origin(req[http::field::origin], req[http::field::host], opts).allowed)
    return refuse(403, "origin_not_allowed",
                  "origin not allowed: " + std::string(req[http::field::origin].substr(0, 200)));

  ws_accept a;
  a.deflate = opts.ws_deflate && negotiate_deflate(req[http::field::sec_websocket_extensions]);
  a.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      ws_accept_key(key) + "\r\n";
  if (a.deflate)
    a.response +=
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
        "client_no_context_takeover\r\n";
  a.response += "\r\n";
  return a;
}

}  // namespace herald::transport
