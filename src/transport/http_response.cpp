#include "transport/http_response.hpp"

namespace herald::transport {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string http_head(int status, std::string_view content_type, long long content_length, bool keep_alive,
                      const header_list& extra) {
  std::string h;
  h.reserve(160);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += reason_phrase(status);
  h += "\r\nServer: herald\r\n";
  if (!content_type.empty()) {
    h += "Content-Type: ";
    h += content_type;
    h += "\r\n";
  }
  if (content_length >= 0) {
    h += "Content-Length: ";
    h += std::to_string(content_length);
    h += "\r\n";
  }
  if (!keep_alive) h += "Connection: close\r\n";
  for (const auto& [k, v] : extra) {
    h += k;
    h += ": ";
    h += v;
    h += "\r\n";
  }
  h += "\r\n";
  return h;
}

}  // namespace herald::transport
