#include "protocol/replies.hpp"

#include "protocol/json_text.hpp"

namespace herald::protocol {

namespace {

// Cursors are URL-safe ASCII (base64url), never escaped: quoted as they are.
void append_cursor(std::string& out, std::string_view cursor) {
  out += '"';
  out += cursor;
  out += '"';
}

void append_channels(std::string& out, std::span<const std::string> channels) {
  out += '[';
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (i) out += ',';
    out += json_quote(channels[i]);
  }
  out += ']';
}

}  // namespace

std::string error_json(const util::api_error& e) {
  std::string out = "{\"error\":{\"code\":";
  out += json_quote(e.code);
  out += ",\"message\":";
  out += json_quote(e.message);
  if (!e.extra_json.empty()) {
    out += ',';
    out += e.extra_json;
  }
  out += "}}";
  return out;
}

std::string sse_retry(std::int64_t ms) { return "retry: " + std::to_string(ms) + "\n\n"; }

std::string sse_position(std::string_view cursor) {
  std::string out = "id: ";
  out += cursor;
  out += "\n\n";
  return out;
}

std::string sse_id_line(std::string_view cursor) {
  std::string out = "id: ";
  out += cursor;
  out += '\n';
  return out;
}

std::string sse_reset(std::string_view cursor, std::span<const std::string> channels) {
  std::string out = sse_id_line(cursor);
  out += "event: reset\ndata: {\"recovered\":false,\"channels\":";
  append_channels(out, channels);
  out += ",\"cursor\":";
  append_cursor(out, cursor);
  out += "}\n\n";
  return out;
}

std::string sse_token_expired(std::string_view cursor) {
  return sse_id_line(cursor) + "event: token_expired\ndata: " +
         error_json({401, "token_expired", "the token has expired: refresh it and reconnect"}) + "\n\n";
}

std::string poll_reply_tail(std::string_view cursor, std::span<const std::string> resets) {
  std::string out = "],\"cursor\":";
  append_cursor(out, cursor);
  out += ",\"recovered\":";
  out += resets.empty() ? "true" : "false";
  if (!resets.empty()) {
    out += ",\"reset\":";
    append_channels(out, resets);
  }
  out += '}';
  return out;
}

std::string history_reply(std::span<const message_ptr> messages, std::string_view cursor, bool recovered) {
  std::size_t size = 64 + cursor.size();
  for (const auto& m : messages) size += m->json().size() + 1;
  std::string out;
  out.reserve(size);
  out += messages_head;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i) out += ',';
    out += messages[i]->json();
  }
  out += "],\"cursor\":";
  append_cursor(out, cursor);
  out += recovered ? ",\"recovered\":true}" : ",\"recovered\":false}";
  return out;
}

std::string ws_subscribed(std::string_view channel, bool recovered, std::string_view cursor, bool raw, bool ended) {
  std::string out = "{\"channel\":" + json_quote(channel);
  out += recovered ? ",\"recovered\":true,\"cursor\":" : ",\"recovered\":false,\"cursor\":";
  append_cursor(out, cursor);
  if (ended) out += ",\"ended\":true";
  out += raw ? ",\"format\":\"raw\"}" : "}";
  return out;
}

std::string sse_raw_id_line(std::string_view cursor) {
  std::string out = "id:";
  out += cursor;
  out += '\n';
  return out;
}

std::string raw_poll_head(std::string_view cursor, std::span<const std::string> resets,
                          std::span<const std::string> ended) {
  // Channel names hold no space and cursors none either: the line splits on spaces.
  std::string out(cursor);
  auto list = [&out](std::string_view word, std::span<const std::string> channels) {
    if (channels.empty()) return;
    out += word;
    for (const auto& c : channels) {
      out += ' ';
      out += c;
    }
  };
  list(" reset", resets);
  list(" end", ended);
  out += '\n';
  return out;
}

std::string ws_raw_channel(std::string_view channel, std::string_view cursor) {
  std::string out = "{\"channel\":" + json_quote(channel);
  if (!cursor.empty()) {
    out += ",\"cursor\":";
    append_cursor(out, cursor);
  }
  out += '}';
  return out;
}

std::string ws_reset(std::string_view channel, std::string_view cursor) {
  std::string out = "{\"reset\":{\"channel\":" + json_quote(channel) + ",\"cursor\":";
  append_cursor(out, cursor);
  out += "}}";
  return out;
}

std::string stream_result(std::string_view channel, std::uint64_t offset, std::string_view cursor,
                          std::string_view state) {
  std::string out = "{\"channel\":" + json_quote(channel) + ",\"offset\":" + std::to_string(offset) + ",\"cursor\":";
  append_cursor(out, cursor);
  out += ",\"state\":" + json_quote(state) + '}';
  return out;
}

std::string publish_result(std::uint64_t offset, std::string_view cursor) {
  std::string out = "{\"offset\":" + std::to_string(offset) + ",\"cursor\":";
  append_cursor(out, cursor);
  out += '}';
  return out;
}

std::string ephemeral_result() { return "{\"ephemeral\":true}"; }

}  // namespace herald::protocol
