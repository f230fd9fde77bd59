// Fuzz target: the bytes of an HTTP/1.1 connection, read as herald reads them
// (transport/http_session.cpp): Beast's request_parser<string_body> with herald's
// default header and body limits, fed in pseudo-random pieces as reads off a socket come,
// up to four pipelined requests; then, for each parsed request, what herald runs on it:
// boost::urls::parse_origin_form of the target, transport::parse_subscribe_request (the
// /sse and /poll parameters, with Last-Event-ID) and transport::ws_handshake (the /ws
// upgrade, with and without an Origin allow-list and permessage-deflate).
//
// Input: byte 0 seeds the read sizes; the rest is the connection's byte stream.
//
// Properties:
//  - no crash, no undefined behaviour, no unbounded memory, on any bytes;
//  - every refusal is an api_error with a 4xx status, a code and a message;
//  - an accepted subscription names 1..max distinct valid channels, and its timeout,
//    limit and cursor respect the options;
//  - an accepted upgrade answers 101 with a 28-character Sec-WebSocket-Accept, and agrees
//    to permessage-deflate only when it is enabled.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>

#include "fuzz_check.hpp"
#include "protocol/channel_name.hpp"
#include "transport/options.hpp"
#include "transport/subscribe_request.hpp"
#include "transport/ws_handshake.hpp"

namespace http = boost::beast::http;
namespace t = herald::transport;

namespace {

using request = http::request<http::string_body>;

void check_error(const herald::util::api_error& e) {
  FUZZ_CHECK(e.status >= 400 && e.status < 500, "a refusal is a client error (4xx)");
  FUZZ_CHECK(!e.code.empty() && !e.message.empty(), "a refusal has a code and a message");
}

void subscribe(const boost::urls::url_view& url, const request& req, const t::options& opts) {
  std::string_view last_id;
  if (auto it = req.find("Last-Event-ID"); it != req.end()) last_id = it->value();
  auto r = t::parse_subscribe_request(url.params(), last_id, opts);
  if (auto* err = std::get_if<herald::util::api_error>(&r)) return check_error(*err);
  const auto& sub = std::get<t::subscribe_request>(r);
  FUZZ_CHECK(!sub.channels.empty() && sub.channels.size() <= opts.max_channels_per_connection,
             "a subscription names 1..max channels");
  for (const auto& c : sub.channels) {
    FUZZ_CHECK(herald::protocol::valid_channel_name(c), "a subscribed channel is valid");
    FUZZ_CHECK(std::count(sub.channels.begin(), sub.channels.end(), c) == 1, "channels are distinct");
  }
  FUZZ_CHECK(sub.timeout <= opts.poll_timeout_max, "the poll timeout is capped");
  FUZZ_CHECK(sub.limit >= 1 && sub.limit <= opts.poll_limit_max, "the poll limit is 1..max");
  for (const auto& e : sub.since)
    FUZZ_CHECK(std::count_if(sub.since.begin(), sub.since.end(), [&](auto& x) { return x.tag == e.tag; }) == 1,
               "the combined cursor has one position per channel");
}

void upgrade(const request& req, const t::options& opts) {
  auto r = t::ws_handshake(req, opts);
  if (auto* refusal = std::get_if<t::ws_refusal>(&r)) return check_error(refusal->error);
  const auto& a = std::get<t::ws_accept>(r);
  FUZZ_CHECK(a.response.starts_with("HTTP/1.1 101 ") && a.response.ends_with("\r\n\r\n"), "a 101 response head");
  const auto key = a.response.find("Sec-WebSocket-Accept: ");
  FUZZ_CHECK(key != std::string::npos && a.response.find("\r\n", key) == key + 22 + 28,
             "Sec-WebSocket-Accept is base64 of a SHA-1");
  FUZZ_CHECK(opts.ws_deflate || !a.deflate, "deflate only when enabled");
}

// What http_session::handle_request runs on a parsed request before the API handlers.
void handle(const request& req) {
  (void)req.keep_alive();
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return;  // 400 malformed request target
  (void)url->encoded_path();
  t::options opts;  // the defaults, as herald runs without options
  subscribe(*url, req, opts);
  upgrade(req, opts);
  t::options strict;
  strict.max_channels_per_connection = 2;
  strict.poll_limit_max = 5;
  strict.poll_limit = 5;
  strict.ws_deflate = true;
  strict.allowed_origins = {"https://app.example", "null"};
  subscribe(*url, req, strict);
  upgrade(req, strict);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint32_t seed = data[0] + 1u;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const t::options defaults;
  for (int n = 0; n < 4 && !rest.empty(); ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(defaults.max_header_bytes));
    parser.body_limit(defaults.max_body_bytes);
    // The bytes "received" so far: like a read buffer, grown by pseudo-random reads
    // whenever the parser needs more.
    std::size_t received = 0;
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      if (received == rest.size()) {
        // The peer closed the connection.
        parser.put_eof(ec);
        break;
      }
      seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;  // xorshift32
      received = std::min(rest.size(), received + ((seed & 3) == 0 ? rest.size() : 1 + (seed >> 4) % 64));
      for (;;) {
        const std::size_t used = parser.put(boost::asio::buffer(rest.data(), received), ec);
        FUZZ_CHECK(used <= received, "the parser consumes what it was given at most");
        rest.remove_prefix(used);
        received -= used;
        if (ec == http::error::need_more) {
          ec = {};
          break;  // read more
        }
        if (ec || parser.is_done() || used == 0) break;
      }
      if (ec) break;
    }
    if (ec || !parser.is_done()) return 0;  // herald answers 400/413/431 and closes
    handle(parser.get());
  }
  return 0;
}
