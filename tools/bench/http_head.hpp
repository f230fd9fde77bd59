#pragma once
// The one HTTP/1.1 response-head reader of the tool's clients, and the small JSON text
// helpers they share. Deliberately minimal (the server is the system under test): a head
// is the bytes before the first blank line, its status the three digits after
// "HTTP/1.1 ", its body length its Content-Length.
#include <optional>
#include <string>
#include <string_view>

#include "wire.hpp"

namespace herald::bench {

struct http_head {
  std::string_view text;           // the status line and the headers, without the blank line
  std::size_t size = 0;            // bytes through the blank line
  int status = 0;                  // 0: not an HTTP/1.1 status line
  std::size_t content_length = 0;  // 0 when none
  bool ok() const noexcept { return status >= 200 && status < 300; }
  /// The value of header `name` ("Etag"), as written; empty when absent.
  std::string_view header(std::string_view name) const {
    std::string key = "\r\n";
    key.append(name).append(": ");
    auto p = text.find(key);
    if (p == std::string_view::npos) return {};
    p += key.size();
    return text.substr(p, text.find("\r\n", p) - p);
  }
};

/// The head at the start of `in`; nullopt while it is not whole.
inline std::optional<http_head> read_head(std::string_view in) {
  const auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  http_head h;
  h.text = in.substr(0, end);
  h.size = end + 4;
  constexpr std::string_view version = "HTTP/1.1 ";
  if (h.text.starts_with(version) && h.text.size() >= version.size() + 3)
    h.status = static_cast<int>(number_after(h.text, version));
  h.content_length = number_after(h.text, "Content-Length: ");
  return h;
}

/// Bytes of the whole response (head and Content-Length body) at the start of `in`;
/// nullopt while it is not whole.
inline std::optional<std::size_t> whole_response(std::string_view in) {
  auto h = read_head(in);
  if (!h || in.size() < h->size + h->content_length) return std::nullopt;
  return h->size + h->content_length;
}

/// `s` as a JSON string literal (quotes, backslashes and newlines escaped: enough for
/// the tool's own payloads).
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out + '"';
}

/// The quoted value after the last `key` (e.g. "\"cursor\":\""), empty when none.
inline std::string_view string_after_last(std::string_view s, std::string_view key) {
  auto p = s.rfind(key);
  if (p == std::string_view::npos) return {};
  p += key.size();
  auto end = s.find('"', p);
  return end == std::string_view::npos ? std::string_view{} : s.substr(p, end - p);
}

/// The opening handshake of a WebSocket to herald's /ws (or a peer's `path`), with
/// `headers` ("Name: value\r\n" lines) added.
inline std::string ws_upgrade(std::string_view path = "/ws", std::string_view headers = {}) {
  std::string r = "GET ";
  r.append(path).append(
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n");
  r.append(headers).append("\r\n");
  return r;
}

}  // namespace herald::bench
