#pragma once
// Small pieces of the wire that every client of the tool shares: numbers in JSON text,
// JSON strings, WebSocket client frames and the server frames' boundaries.
#include <cstdint>
#include <charconv>
#include <system_error>
#include <string>
#include <string_view>

namespace herald::bench {

inline std::uint64_t number_after(std::string_view s, std::string_view key, std::size_t from = 0) {
  auto p = s.find(key, from);
  if (p == std::string_view::npos) return 0;
  std::uint64_t v = 0;
  std::from_chars(s.data() + p + key.size(), s.data() + s.size(), v);
  return v;
}

// A client frame (FIN, text) carrying `payload`, masked with a zero key (so the payload
// goes as is).
inline std::string ws_client_frame(std::string_view payload) {
  std::string f(1, static_cast<char>(0x81));
  const auto len = payload.size();
  if (len < 126) {
    f += static_cast<char>(0x80 | len);
  } else if (len < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  f.append(4, '\0');
  f += payload;
  return f;
}

// An unsolicited pong (RFC 6455 5.5.3: a one-way heartbeat), masked with a zero key: a
// client that reads nothing else still shows the server it is alive (herald pings a
// connection it read nothing from for --ws-ping-interval and closes it when no answer
// comes within --ws-pong-timeout).
inline std::string ws_client_pong() { return std::string("\x8a\x80\0\0\0\0", 6); }

// Calls on_payload for each complete server frame at the start of `in` (server frames are
// unmasked and never fragmented); returns the bytes consumed.
template <class F>
inline std::size_t ws_frames(std::string_view in, F&& on_payload) {
  std::size_t pos = 0;
  while (in.size() - pos >= 2) {
    const auto b1 = static_cast<std::uint8_t>(in[pos + 1]) & 0x7f;
    std::size_t head = 2, len = b1;
    if (b1 == 126) {
      if (in.size() - pos < 4) break;
      len = (static_cast<std::uint8_t>(in[pos + 2]) << 8) | static_cast<std::uint8_t>(in[pos + 3]);
      head = 4;
    } else if (b1 == 127) {
      if (in.size() - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(in[pos + 2 + i]);
      head = 10;
    }
    if (in.size() - pos < head + len) break;
    on_payload(in.substr(pos + head, len));
    pos += head + len;
  }
  return pos;
}

/// Decodes the JSON string literal that starts at `s[0]` (its opening quote) and appends
/// it to `out`; returns the bytes consumed through the closing quote, 0 when it is not
/// whole or not valid JSON.
inline std::size_t json_unquote(std::string_view s, std::string& out) {
  if (s.empty() || s[0] != '"') return 0;
  auto hex4 = [&](std::size_t at, unsigned& v) {
    if (at + 4 > s.size()) return false;
    auto r = std::from_chars(s.data() + at, s.data() + at + 4, v, 16);
    return r.ec == std::errc{} && r.ptr == s.data() + at + 4;
  };
  auto utf8 = [&](unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6)), out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12)), out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18)), out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f)), out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  };
  for (std::size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') return i + 1;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) return 0;
    switch (s[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        unsigned cp = 0, lo = 0;
        if (!hex4(i + 1, cp)) return 0;
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {  // a surrogate pair: \uD8xx\uDCxx
          if (i + 6 >= s.size() || s[i + 1] != '\\' || s[i + 2] != 'u' || !hex4(i + 3, lo)) return 0;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
        utf8(cp);
        break;
      }
      default: return 0;
    }
  }
  return 0;
}

}  // namespace herald::bench
