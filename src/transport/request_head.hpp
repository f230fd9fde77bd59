#pragma once
// The checks of a request's head that Beast's parser leaves to the server (RFC 9112,
// RFC 9110), made once the head is read and before any body byte is: message framing
// (Transfer-Encoding), Host, expectations, and the request target (origin-form or
// absolute-form).
#include <optional>
#include <string_view>
#include <variant>

#include <boost/beast/http/message.hpp>
#include <boost/url/params_view.hpp>

#include "util/api_error.hpp"

namespace herald::transport {

/// A request target split for routing; views into the target string.
struct request_target {
  std::string_view path;  // still percent-encoded; "/" for an absolute-form without a path
  boost::urls::params_view params;
  std::string_view authority;  // absolute-form only: the host[:port] it names, else empty
};

/// The origin-form ("/p?q") or absolute-form ("http://host/p?q", RFC 9112 3.2.2) target;
/// nullopt for anything else (authority-form, asterisk-form, garbage).
std::optional<request_target> parse_request_target(std::string_view target);

struct request_head {
  request_target target;
  std::string_view host;          // the authority addressed: absolute-form's, else Host
  bool expects_continue = false;  // the client waits for 100 Continue before its body
};

/// `error` is to be answered and the connection closed: a refused head's body (if any)
/// was not read, and with broken framing what follows is not a next request.
struct head_refusal {
  util::api_error error;
};

/// Checks `req`'s head; `chunked` is the parser's verdict (the last coding is chunked).
/// The result views into `req`, valid while it lives.
std::variant<request_head, head_refusal> check_request_head(const boost::beast::http::request_header<>& req,
                                                            bool chunked);

}  // namespace herald::transport
