// Fuzz target: the cursor codec (protocol/cursor.hpp), which decodes the `since`
// parameter, the Last-Event-ID header and the `since` of WebSocket commands.
//
// Properties:
//  1. decode_cursor never crashes on any bytes, and a decoded cursor holds at least one
//     entry;
//  2. a decoded cursor re-encodes to a token that decodes to the same entries (the token
//     itself may differ: a non-minimal varint decodes but re-encodes minimally), and
//     that re-encoding is a fixed point of encode(decode(.));
//  3. any entries (read from the input as tag, epoch, offset triples) encode to a token
//     of base64url characters that decodes back to exactly those entries whenever it
//     fits max_cursor_chars;
//  4. the compact one-channel form (raw formats) has one spelling: a decoded compact
//     token re-encodes to itself, and any entry's compact token decodes to that entry.
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/cursor.hpp"

using herald::protocol::cursor_entry;
using herald::protocol::decode_cursor;
using herald::protocol::encode_compact_cursor;
using herald::protocol::encode_cursor;

namespace {

bool base64url(std::string_view s) {
  for (unsigned char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);

  if (auto entries = decode_cursor(token)) {
    FUZZ_CHECK(!entries->empty(), "a decoded cursor has entries");
    const bool compact = token.front() >= 'g' && token.front() <= 'v';  // marker bits 10
    if (compact) {
      FUZZ_CHECK(entries->size() == 1, "a compact cursor holds one entry");
      FUZZ_CHECK(encode_compact_cursor(entries->front()) == token, "a compact cursor has one spelling");
    }
    const std::string again = compact ? std::string(token) : encode_cursor(*entries);
    FUZZ_CHECK(again.size() <= token.size(), "re-encoding never grows a token");
    auto redecoded = decode_cursor(again);
    FUZZ_CHECK(redecoded.has_value(), "a re-encoded cursor decodes");
    FUZZ_CHECK(*redecoded == *entries, "a re-encoded cursor decodes to the same entries");
    FUZZ_CHECK((compact ? encode_compact_cursor(redecoded->front()) : encode_cursor(*redecoded)) == again,
               "encode(decode(.)) is a fixed point");
  }

  // The input as raw entries: 4 bytes tag, 4 bytes epoch, 8 bytes offset each.
  std::vector<cursor_entry> entries;
  for (std::size_t p = 0; p + 16 <= size; p += 16) {
    cursor_entry e;
    std::memcpy(&e.tag, data + p, 4);
    std::memcpy(&e.epoch, data + p + 4, 4);
    std::memcpy(&e.offset, data + p + 8, 8);
    entries.push_back(e);
  }
  if (!entries.empty()) {
    auto compact = decode_cursor(encode_compact_cursor(entries.front()));
    FUZZ_CHECK(compact && compact->size() == 1 && compact->front() == entries.front(),
               "an entry's compact cursor decodes to it");
    const std::string token2 = encode_cursor(entries);
    FUZZ_CHECK(base64url(token2), "a token is base64url without padding");
    auto back = decode_cursor(token2);
    if (token2.size() <= herald::protocol::max_cursor_chars) {
      FUZZ_CHECK(back.has_value(), "an encoded cursor within the size limit decodes");
      FUZZ_CHECK(*back == entries, "an encoded cursor decodes to its entries");
    } else {
      FUZZ_CHECK(!back.has_value(), "a token past max_cursor_chars is refused");
    }
  }
  return 0;
}
