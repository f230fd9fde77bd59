#include "protocol/message.hpp"

#include "protocol/cursor.hpp"
#include "protocol/deflate.hpp"
#include "protocol/ws_frame.hpp"

namespace herald::protocol {

namespace {
// A message's JSON element, {"channel","offset","time","event","data"}; an ephemeral one has
// no offset and says "ephemeral":true instead. Returns where the data starts. Channel and
// event names are restricted to characters that need no JSON escaping.
std::uint32_t element_json(std::string& out, std::string_view channel, const std::uint64_t* offset,
                           std::int64_t time_ms, std::string_view event, std::string_view data_json) {
  out.reserve(channel.size() + event.size() + data_json.size() + 64);
  out += "{\"channel\":\"";
  out += channel;
  if (offset) {
    out += "\",\"offset\":";
    out += std::to_string(*offset);
    out += ",\"time\":";
  } else {
    out += "\",\"time\":";
  }
  out += std::to_string(time_ms);
  if (!offset) out += ",\"ephemeral\":true";
  if (!event.empty()) {
    out += ",\"event\":\"";
    out += event;
    out += '"';
  }
  out += ",\"data\":";
  const auto data_pos = static_cast<std::uint32_t>(out.size());
  out += data_json;
  out += '}';
  return data_pos;
}
}  // namespace

message::message(std::string channel, std::uint64_t offset, std::uint32_t epoch, std::int64_t time_ms,
                 std::string event, std::string_view data_json)
    : channel_(std::move(channel)),
      tag_(protocol::channel_tag(channel_)),
      offset_(offset),
      epoch_(epoch),
      time_ms_(time_ms),
      event_(std::move(event)) {
  data_pos_ = element_json(json_, channel_, &offset_, time_ms_, event_, data_json);
  cursor_entry e{tag_, epoch_, offset_};
  cursor_ = encode_cursor({&e, 1});
}

message::message(message_kind kind, std::string channel, std::int64_t time_ms, std::string event,
                 std::string_view body_json)
    : channel_(std::move(channel)),
      tag_(protocol::channel_tag(channel_)),
      offset_(0),
      epoch_(0),
      kind_(kind),
      time_ms_(time_ms) {
  if (kind == message_kind::ephemeral) {
    event_ = std::move(event);
    data_pos_ = element_json(json_, channel_, nullptr, time_ms_, event_, body_json);
    return;
  }
  // join / leave: {"join":{"channel":C,<body members>}}; the SSE event name says which.
  event_ = kind == message_kind::join ? "join" : "leave";
  json_.reserve(channel_.size() + body_json.size() + 32);
  json_ += "{\"";
  json_ += event_;
  json_ += "\":";
  data_pos_ = static_cast<std::uint32_t>(json_.size());
  json_ += "{\"channel\":\"";
  json_ += channel_;
  json_ += '"';
  if (body_json.size() > 2) {  // "{}" adds nothing
    json_ += ',';
    json_ += body_json.substr(1);
  } else {
    json_ += '}';
  }
  json_ += '}';
  // Quotes inside the user's string are escaped, so this key is the member's own.
  constexpr std::string_view key = ",\"client\":\"";
  if (auto at = json_.find(key); at != std::string::npos) {
    const auto from = at + key.size();
    if (auto end = json_.find('"', from); end != std::string::npos) {
      client_pos_ = static_cast<std::uint32_t>(from);
      client_len_ = static_cast<std::uint32_t>(end - from);
    }
  }
}

std::string_view message::data_json() const noexcept {
  return std::string_view(json_).substr(data_pos_, json_.size() - data_pos_ - 1);
}

void message::build_sse() const {
  std::call_once(sse_once_, [this] {
    sse_.reserve(json_.size() + cursor_.size() + event_.size() + 24);
    if (is_signal()) {  // no id line: the client's position does not move
      if (!event_.empty()) {
        sse_ += "event: ";
        sse_ += event_;
        sse_ += '\n';
      }
      sse_ += "data: ";
      sse_ += kind_ == message_kind::ephemeral ? std::string_view(json_) : data_json();
      sse_ += "\n\n";
      return;
    }
    sse_ += "id: ";
    sse_ += cursor_;
    sse_ += '\n';
    sse_body_pos_ = static_cast<std::uint32_t>(sse_.size());
    if (!event_.empty()) {
      sse_ += "event: ";
      sse_ += event_;
      sse_ += '\n';
    }
    sse_ += "data: ";
    sse_ += json_;
    sse_ += "\n\n";
  });
}

std::string_view message::sse_event() const {
  build_sse();
  return sse_;
}

std::string_view message::sse_body() const {
  build_sse();
  return std::string_view(sse_).substr(sse_body_pos_);
}

namespace {
std::string push_payload(std::string_view json, std::string_view cursor, message_kind kind) {
  if (kind == message_kind::join || kind == message_kind::leave) return std::string(json);
  if (kind == message_kind::ephemeral) return "{\"push\":" + std::string(json) + "}";
  std::string p;
  p.reserve(json.size() + cursor.size() + 24);
  p += "{\"push\":";
  p += json.substr(0, json.size() - 1);
  p += ",\"cursor\":\"";
  p += cursor;
  p += "\"}}";
  return p;
}
}  // namespace

std::string_view message::ws_frame(bool deflated) const {
  if (!deflated) {
    std::call_once(ws_once_,
                   [this] { ws_ = protocol::ws_frame(ws_opcode::text, push_payload(json_, cursor_, kind_)); });
    return ws_;
  }
  std::call_once(ws_deflated_once_, [this] {
    ws_deflated_ = protocol::ws_frame(ws_opcode::text, deflate_message(push_payload(json_, cursor_, kind_)), true);
  });
  return ws_deflated_;
}

// footprint() is in message_raw.cpp, beside the raw forms it counts.

}  // namespace herald::protocol
