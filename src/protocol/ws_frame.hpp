#pragma once
// WebSocket framing (RFC 6455 section 5) for the server side, without sockets.
//
// Writing: server frames are never masked and never fragmented, so a whole frame can be
// built once and shared (see message::ws_frame()).
//
// Reading: ws_reader is fed the bytes a client sends and reports whole messages and
// control frames, enforcing the RFC: masking, reserved bits and opcodes, control frame
// rules, fragmentation with control frames interleaved, UTF-8 of text messages (checked
// per fragment, failing fast), close codes, the message size limit, and
// permessage-deflate (RSV1, inflated with a size cap). The first violation fixes the
// close code and reason to send; nothing is reported after it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/utf8.hpp"

namespace herald::protocol {

enum class ws_opcode : std::uint8_t { cont = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

namespace ws_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;  // server shutting down: reconnect
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported = 1003;
inline constexpr std::uint16_t no_status = 1005;        // never sent
inline constexpr std::uint16_t invalid_payload = 1007;  // bad UTF-8
inline constexpr std::uint16_t policy = 1008;
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
// herald's own codes (docs/protocol.md): 4000-4099 transient, reconnect and resume;
// 4100-4199 permanent, do not reconnect without changing the request.
inline constexpr std::uint16_t slow_consumer = 4000;
inline constexpr std::uint16_t no_pong = 4001;
inline constexpr std::uint16_t broker_unavailable = 4002;
inline constexpr std::uint16_t token_expired = 4003;  // get a fresh token (or ticket), then reconnect
inline constexpr std::uint16_t hook_failed = 4004;    // the connect hook timed out or failed: reconnect later
inline constexpr std::uint16_t bad_request = 4100;
inline constexpr std::uint16_t unauthorized = 4101;  // invalid token or ticket: do not retry with it
inline constexpr std::uint16_t forbidden = 4103;
}  // namespace ws_close

/// A complete server frame (FIN set, unmasked) carrying `payload`.
std::string ws_frame(ws_opcode op, std::string_view payload, bool compressed = false);
/// A close frame with `code` and a reason (truncated to fit 125 bytes).
std::string ws_close_frame(std::uint16_t code, std::string_view reason);
/// True for codes a peer may send in a close frame (RFC 6455 7.4).
bool ws_valid_close_code(std::uint16_t code) noexcept;

class ws_reader {
 public:
  struct handler {
    /// A whole data message (text: valid UTF-8), inflated if it was compressed.
    virtual void on_ws_message(bool text, std::string_view payload) = 0;
    virtual void on_ws_ping(std::string_view payload) = 0;
    virtual void on_ws_pong(std::string_view payload) = 0;
    /// The peer's close frame (code 1005 when it carried none).
    virtual void on_ws_close(std::uint16_t code, std::string_view reason) = 0;
    /// True to stop parsing for now (the reader's output is backlogged): the bytes not
    /// parsed yet are kept, and parsed by the next feed() (feed(nullptr, 0) resumes).
    virtual bool hold() const noexcept { return false; }

   protected:
    ~handler() = default;
  };

  ws_reader(std::size_t max_message, bool deflate) : max_message_(max_message), deflate_(deflate) {}

  /// Feeds bytes read from the peer (modified in place: unmasked). Returns false once
  /// the peer broke the protocol; error_code()/error_reason() then say what to close with.
  /// Stops early while h.hold(), keeping the rest (at most what was fed plus a partial frame).
  bool feed(char* data, std::size_t size, handler& h);

  std::uint16_t error_code() const noexcept { return error_code_; }
  const std::string& error_reason() const noexcept;
  /// True when no partial frame or message is buffered.
  bool idle() const noexcept { return !b_ || (b_->partial.empty() && !in_message_); }

 private:
  // Parses one frame at data[0..size); returns bytes used, 0 if incomplete, SIZE_MAX on error.
  std::size_t parse_one(char* data, std::size_t size, handler& h);
  bool on_frame(bool fin, bool rsv1, ws_opcode op, char* payload, std::size_t len, handler& h);
  bool fail(std::uint16_t code, std::string reason);

  std::size_t max_message_;
  bool deflate_;
  bool closed_ = false;  // a close frame was received: ignore the rest
  std::uint16_t error_code_ = 0;
  // Allocated only while something is buffered (or after an error): an idle reader
  // holds one null pointer.
  struct buffers {
    std::string error_reason;
    std::string partial;  // bytes of an incomplete frame
    std::string message;  // the data message being assembled from fragments
  };
  buffers& buf();
  void release_if_idle();
  std::unique_ptr<buffers> b_;
  // The data message being assembled from fragments.
  bool in_message_ = false;
  bool message_text_ = false;
  bool message_compressed_ = false;
  utf8_validator utf8_;
};

}  // namespace herald::protocol
