#pragma once
// base64url without padding (RFC 4648 section 5), the alphabet of cursors and JWTs.
#include <optional>
#include <string>
#include <string_view>

namespace herald::protocol {

std::string base64url_encode(std::string_view bytes);
/// Fails on a character outside the alphabet, an impossible length (4n+1) or
/// non-zero leftover bits (one encoding per byte string).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace herald::protocol
