#pragma once
// Response heads written by hand: the delivery path writes heads and shared message
// bytes in one gather write, which Beast's serializer cannot do without a copy.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::transport {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// "HTTP/1.1 <status> <reason>\r\n" + standard headers + `extra` + "\r\n".
/// `content_length` < 0: no Content-Length (a stream that ends with the connection).
std::string http_head(int status, std::string_view content_type, long long content_length, bool keep_alive,
                      const header_list& extra = {});

std::string_view reason_phrase(int status) noexcept;

}  // namespace herald::transport
