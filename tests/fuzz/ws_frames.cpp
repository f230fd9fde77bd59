// Fuzz target: the WebSocket frame reader (protocol/ws_frame.hpp), fed what a client
// sends after the handshake.
//
// Input: byte 0 chooses the reader's options (bit 0: permessage-deflate negotiated;
// bit 1: the smallest allowed --ws-max-message, 1024, instead of the default 128 KiB),
// bytes 1-2 seed the chunking; the rest is the byte stream, fed once in chunks of
// pseudo-random sizes (1 byte up to all of it, as reads off a socket come) and once whole.
//
// Properties:
//  - no crash, no undefined behaviour, whatever the bytes and the chunking;
//  - a delivered data message never exceeds the max message size, a text message is
//    valid UTF-8, a control frame's payload is at most 125 bytes, a peer's close code is
//    valid (or 1005 for none) and nothing is delivered after the close;
//  - once feed() fails it keeps failing, nothing more is delivered, and error_code() is
//    a code a server may send in a close frame (ws_valid_close_code);
//  - the chunking changes nothing: chunked and whole feeding deliver the same events
//    and end in the same state.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/utf8.hpp"
#include "protocol/ws_frame.hpp"

namespace p = herald::protocol;

namespace {

struct recorder final : p::ws_reader::handler {
  std::size_t max_message;
  std::vector<std::string> events;
  bool closed = false;
  bool failed = false;  // feed() returned false: nothing may follow

  explicit recorder(std::size_t max) : max_message(max) {}

  void add(char kind, std::string_view payload) {
    FUZZ_CHECK(!closed, "nothing is delivered after the peer's close frame");
    FUZZ_CHECK(!failed, "nothing is delivered after a protocol error");
    events.push_back(kind + std::string(payload));
  }
  void on_ws_message(bool text, std::string_view payload) override {
    FUZZ_CHECK(payload.size() <= max_message, "a message never exceeds the max message size");
    if (text) FUZZ_CHECK(p::valid_utf8(payload), "a text message is valid UTF-8");
    add(text ? 'T' : 'B', payload);
  }
  void on_ws_ping(std::string_view payload) override {
    FUZZ_CHECK(payload.size() <= 125, "a ping payload is at most 125 bytes");
    add('i', payload);
  }
  void on_ws_pong(std::string_view payload) override {
    FUZZ_CHECK(payload.size() <= 125, "a pong payload is at most 125 bytes");
    add('o', payload);
  }
  void on_ws_close(std::uint16_t code, std::string_view reason) override {
    FUZZ_CHECK(code == p::ws_close::no_status || p::ws_valid_close_code(code), "a peer's close code is valid");
    FUZZ_CHECK(p::valid_utf8(reason), "a close reason is valid UTF-8");
    add('C', std::to_string(code) + ":" + std::string(reason));
    closed = true;
  }
};

struct outcome {
  std::vector<std::string> events;
  std::uint16_t error = 0;
};

// Feeds `stream` through a fresh reader in the chunks `next_chunk` returns.
template <class Chunker>
outcome run(std::string_view stream, std::size_t max_message, bool deflate, Chunker next_chunk) {
  p::ws_reader reader(max_message, deflate);
  recorder rec(max_message);
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t n = std::min(next_chunk(), stream.size() - pos);
    // An exact-size copy: feed() unmasks in place, and ASan sees any read past the end.
    std::vector<char> chunk(stream.begin() + pos, stream.begin() + pos + n);
    pos += n;
    const bool ok = reader.feed(chunk.data(), chunk.size(), rec);
    if (!ok) {
      FUZZ_CHECK(reader.error_code() != 0, "a failure sets a close code");
      FUZZ_CHECK(p::ws_valid_close_code(reader.error_code()), "the close code to send is a valid one");
      FUZZ_CHECK(!reader.error_reason().empty(), "a failure says why");
      rec.failed = true;
    } else {
      FUZZ_CHECK(!rec.failed, "feed() keeps failing after a failure");
    }
  }
  if (rec.failed) {
    char more[2] = {'\x81', '\x80'};
    FUZZ_CHECK(!reader.feed(more, sizeof more, rec), "feed() keeps failing after a failure");
  }
  return {std::move(rec.events), reader.error_code()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const bool deflate = data[0] & 1;
  const std::size_t max_message = (data[0] & 2) ? 1024 : 128 * 1024;
  std::uint32_t seed = (static_cast<std::uint32_t>(data[1]) << 8 | data[2]) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);

  auto chunked = run(stream, max_message, deflate, [&]() -> std::size_t {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;  // xorshift32
    switch (seed % 4) {
      case 0: return 1;                    // byte by byte
      case 1: return 1 + (seed >> 8) % 16;  // inside headers
      case 2: return 1 + (seed >> 8) % 256;
      default: return stream.size();       // the rest
    }
  });
  auto whole = run(stream, max_message, deflate, [&] { return stream.size(); });
  FUZZ_CHECK(chunked.events == whole.events, "chunking does not change the events delivered");
  FUZZ_CHECK(chunked.error == whole.error, "chunking does not change the outcome");
  return 0;
}
