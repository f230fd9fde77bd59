#include "protocol/ws_frame.hpp"

#include <cstring>

#include "protocol/deflate.hpp"

namespace herald::protocol {

std::string ws_frame(ws_opcode op, std::string_view payload, bool compressed) {
  std::string f;
  f.reserve(payload.size() + 10);
  f += static_cast<char>(0x80 | (compressed ? 0x40 : 0) | static_cast<std::uint8_t>(op));
  const std::uint64_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  f += payload;
  return f;
}

std::string ws_close_frame(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xff);
  payload += reason.substr(0, 123);
  return ws_frame(ws_opcode::close, payload);
}

bool ws_valid_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
      return true;
    default:
      return false;
  }
}

ws_reader::buffers& ws_reader::buf() {
  if (!b_) b_ = std::make_unique<buffers>();
  return *b_;
}

void ws_reader::release_if_idle() {
  if (b_ && !error_code_ && !in_message_ && b_->partial.empty()) b_.reset();
}

const std::string& ws_reader::error_reason() const noexcept {
  static const std::string none;
  return b_ ? b_->error_reason : none;
}

bool ws_reader::fail(std::uint16_t code, std::string reason) {
  error_code_ = code;
  buf().error_reason = std::move(reason);
  return false;
}

bool ws_reader::feed(char* data, std::size_t size, handler& h) {
  if (error_code_) return false;
  if (closed_) return true;
  if (b_ && !b_->partial.empty()) {
    // Complete the pending frame first (or the bytes left by a hold).
    auto& partial = b_->partial;
    if (size) partial.append(data, size);
    std::size_t pos = 0;
    while (pos < partial.size() && !closed_ && !h.hold()) {
      std::size_t used = parse_one(partial.data() + pos, partial.size() - pos, h);
      if (used == SIZE_MAX) return false;
      if (used == 0) break;
      pos += used;
    }
    b_->partial.erase(0, pos);
    release_if_idle();
    return true;
  }
  std::size_t pos = 0;
  while (pos < size && !closed_) {
    std::size_t used = h.hold() ? 0 : parse_one(data + pos, size - pos, h);
    if (used == SIZE_MAX) return false;
    if (used == 0) {
      buf().partial.assign(data + pos, size - pos);
      break;
    }
    pos += used;
  }
  release_if_idle();
  return true;
}

std::size_t ws_reader::parse_one(char* data, std::size_t size, handler& h) {
  if (size < 2) return 0;
  const auto b0 = static_cast<std::uint8_t>(data[0]);
  const auto b1 = static_cast<std::uint8_t>(data[1]);
  const bool fin = b0 & 0x80;
  const bool rsv1 = b0 & 0x40;
  const auto op = static_cast<ws_opcode>(b0 & 0x0f);
  const bool masked = b1 & 0x80;
  std::uint64_t len = b1 & 0x7f;
  std::size_t head = 2;

  if (b0 & 0x30) return fail(ws_close::protocol_error, "reserved bits set"), SIZE_MAX;
  const bool control = (b0 & 0x08) != 0;
  switch (op) {
    case ws_opcode::cont:
    case ws_opcode::text:
    case ws_opcode::binary:
    case ws_opcode::close:
    case ws_opcode::ping:
    case ws_opcode::pong:
      break;
    default:
      return fail(ws_close::protocol_error, "reserved opcode"), SIZE_MAX;
  }
  if (rsv1 && (!deflate_ || control || op == ws_opcode::cont))
    return fail(ws_close::protocol_error, "RSV1 set without a negotiated extension"), SIZE_MAX;
  if (control && (!fin || len > 125))
    return fail(ws_close::protocol_error, "control frames must be whole and at most 125 bytes"), SIZE_MAX;
  if (!masked) return fail(ws_close::protocol_error, "client frames must be masked"), SIZE_MAX;

  if (len == 126) {
    if (size < 4) return 0;
    len = (static_cast<std::uint8_t>(data[2]) << 8) | static_cast<std::uint8_t>(data[3]);
    head = 4;
  } else if (len == 127) {
    if (size < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(data[2 + i]);
    if (len >> 63) return fail(ws_close::protocol_error, "frame length out of range"), SIZE_MAX;
    head = 10;
  }
  // Refuse oversized data as soon as the header says so, before buffering it.
  if (!control && len + (in_message_ ? b_->message.size() : 0) > max_message_)
    return fail(ws_close::too_big, "message exceeds " + std::to_string(max_message_) + " bytes"), SIZE_MAX;
  if (size < head + 4 + len) return 0;

  char mask[4];
  std::memcpy(mask, data + head, 4);
  char* payload = data + head + 4;
  for (std::uint64_t i = 0; i < len; ++i) payload[i] ^= mask[i & 3];
  if (!on_frame(fin, rsv1, op, payload, static_cast<std::size_t>(len), h)) return SIZE_MAX;
  return head + 4 + static_cast<std::size_t>(len);
}

bool ws_reader::on_frame(bool fin, bool rsv1, ws_opcode op, char* payload, std::size_t len, handler& h) {
  std::string_view p(payload, len);
  switch (op) {
    case ws_opcode::ping:
      h.on_ws_ping(p);
      return true;
    case ws_opcode::pong:
      h.on_ws_pong(p);
      return true;
    case ws_opcode::close: {
      if (len == 1) return fail(ws_close::protocol_error, "close payload of one byte");
      std::uint16_t code = ws_close::no_status;
      std::string_view reason;
      if (len >= 2) {
        code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                          static_cast<std::uint8_t>(payload[1]));
        if (!ws_valid_close_code(code)) return fail(ws_close::protocol_error, "invalid close code");
        reason = p.substr(2);
        if (!valid_utf8(reason)) return fail(ws_close::invalid_payload, "close reason is not UTF-8");
      }
      closed_ = true;
      h.on_ws_close(code, reason);
      return true;
    }
    case ws_opcode::text:
    case ws_opcode::binary:
      if (in_message_) return fail(ws_close::protocol_error, "new message before the last one ended");
      message_text_ = op == ws_opcode::text;
      message_compressed_ = rsv1;
      utf8_.reset();
      if (fin && !rsv1) {
        // Unfragmented, uncompressed: no copy.
        if (message_text_ && !valid_utf8(p)) return fail(ws_close::invalid_payload, "text message is not UTF-8");
        h.on_ws_message(message_text_, p);
        return true;
      }
      in_message_ = true;
      break;
    case ws_opcode::cont:
      if (!in_message_) return fail(ws_close::protocol_error, "continuation without a message");
      break;
  }
  if (message_text_ && !message_compressed_ && !utf8_.feed(p))
    return fail(ws_close::invalid_payload, "text message is not UTF-8");
  buf().message.append(p);
  if (!fin) return true;

  in_message_ = false;
  std::string whole;
  whole.swap(b_->message);
  if (message_compressed_) {
    std::string inflated;
    switch (inflate_message(whole, max_message_, inflated)) {
      case inflate_error::too_big:
        return fail(ws_close::too_big, "compressed message inflates past " + std::to_string(max_message_) + " bytes");
      case inflate_error::corrupt:
        return fail(ws_close::invalid_payload, "compressed message is not valid deflate data");
      case inflate_error::none:
        break;
    }
    whole = std::move(inflated);
    if (message_text_ && !valid_utf8(whole)) return fail(ws_close::invalid_payload, "text message is not UTF-8");
  } else if (message_text_ && !utf8_.complete()) {
    return fail(ws_close::invalid_payload, "text message ends inside a character");
  }
  h.on_ws_message(message_text_, whole);
  return true;
}

}  // namespace herald::protocol
