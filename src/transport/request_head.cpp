#include "transport/request_head.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/url/parse.hpp>

namespace herald::transport {

namespace http = boost::beast::http;
namespace urls = boost::urls;
using util::api_error;

std::optional<request_target> parse_request_target(std::string_view target) {
  if (target.starts_with('/')) {
    auto u = urls::parse_origin_form(target);
    if (!u) return std::nullopt;
    return request_target{u->encoded_path(), u->params(), {}};
  }
  // Absolute-form: what a client talking to a proxy sends, and servers must accept.
  auto u = urls::parse_absolute_uri(target);
  if (!u || (u->scheme_id() != urls::scheme::http && u->scheme_id() != urls::scheme::https) || !u->has_authority() ||
      u->has_userinfo() || u->encoded_host().empty() || u->has_fragment())
    return std::nullopt;
  std::string_view path = u->encoded_path();
  if (path.empty()) path = "/";
  return request_target{path, u->params(), u->encoded_host_and_port()};
}

namespace {

head_refusal refuse(int status, std::string code, std::string message) {
  return head_refusal{api_error{status, std::move(code), std::move(message)}};
}

// Transfer-Encoding (RFC 9112 6.1, 6.3): the body's length is only known when chunked
// is the last coding; herald decodes no other coding, so chunked must be the only one.
std::optional<head_refusal> check_framing(const http::request_header<>& req, bool chunked) {
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  if (req.version() < 11) return refuse(400, "bad_request", "Transfer-Encoding is not allowed in HTTP/1.0");
  bool only_chunked = true, any = false;
  for (auto it = first; it != last; ++it)
    for (auto coding : http::token_list{it->value()}) {
      any = true;
      if (!boost::beast::iequals(coding, "chunked")) only_chunked = false;
    }
  if (!chunked || !any)
    return refuse(400, "bad_request", "Transfer-Encoding must end in chunked (the body length is unknown)");
  if (!only_chunked) return refuse(501, "not_implemented", "no transfer coding but chunked is supported");
  return std::nullopt;
}

// Host (RFC 9112 3.2): exactly one in HTTP/1.1, with a valid host[:port] (or empty).
std::optional<head_refusal> check_host(const http::request_header<>& req) {
  auto [first, last] = req.equal_range(http::field::host);
  const auto n = std::distance(first, last);
  if (n == 0 && req.version() < 11) return std::nullopt;
  if (n != 1) return refuse(400, "bad_request", "an HTTP/1.1 request needs exactly one Host header");
  const std::string_view host = first->value();
  if (host.empty()) return std::nullopt;
  auto a = urls::parse_authority(host);
  if (!a || a->has_userinfo()) return refuse(400, "bad_request", "malformed Host header");
  return std::nullopt;
}

}  // namespace

std::variant<request_head, head_refusal> check_request_head(const http::request_header<>& req, bool chunked) {
  if (auto r = check_framing(req, chunked)) return *r;
  if (auto r = check_host(req)) return *r;
  auto target = parse_request_target(req.target());
  if (!target) return refuse(400, "bad_request", "malformed request target");
  const std::string_view host_field = req[http::field::host];
  request_head head{*target, target->authority.empty() ? host_field : target->authority};
  // Expect (RFC 9110 10.1.1): 100-continue is the only expectation; HTTP/1.0 clients
  // cannot have one (it is ignored there).
  if (auto it = req.find(http::field::expect); it != req.end() && req.version() >= 11) {
    if (!boost::beast::iequals(it->value(), "100-continue") || req.count(http::field::expect) != 1)
      return refuse(417, "expectation_failed", "the only expectation supported is 100-continue");
    head.expects_continue = true;
  }
  return head;
}

}  // namespace herald::transport
