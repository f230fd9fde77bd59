// The raw wire forms of a message (format=raw; docs/protocol.md "Raw formats"): the
// published data and only what exact resume needs. Like the default forms, each is built
// at most once per message, on first use, and shared by every subscriber on every thread.
#include "protocol/cursor.hpp"
#include "protocol/deflate.hpp"
#include "protocol/message.hpp"
#include "protocol/ws_frame.hpp"

namespace herald::protocol {

message::raw_forms& message::raw() const {
  std::call_once(raw_once_, [this] { raw_ = std::make_unique<raw_forms>(); });
  return *raw_;
}

const std::string& message::compact_cursor() const {
  auto& r = raw();
  std::call_once(r.cursor_once, [&] { r.cursor = encode_compact_cursor({tag_, epoch_, offset_}); });
  return r.cursor;
}

namespace {
// "[event:<name>\n]": field names without the optional space (one byte each).
void append_event(std::string& out, const std::string& event) {
  if (event.empty()) return;
  out += "event:";
  out += event;
  out += '\n';
}
}  // namespace

std::string_view message::sse_raw_event() const {
  auto& r = raw();
  const auto& cursor = compact_cursor();
  std::call_once(r.sse_once, [&] {
    r.sse.reserve(cursor.size() + event_.size() + data_json().size() + 24);
    r.sse += "id:";
    r.sse += cursor;
    r.sse += '\n';
    append_event(r.sse, event_);
    r.sse += "data:";
    r.sse += data_json();
    r.sse += "\n\n";
  });
  return r.sse;
}

std::string_view message::sse_raw_body() const {
  auto& r = raw();
  std::call_once(r.sse_body_once, [&] {
    // Two data lines: EventSource joins them with "\n", so event.data is
    // "<channel>\n<data>" (neither holds a newline).
    r.sse_body.reserve(channel_.size() + event_.size() + data_json().size() + 24);
    append_event(r.sse_body, event_);
    r.sse_body += "data:";
    r.sse_body += channel_;
    r.sse_body += "\ndata:";
    r.sse_body += data_json();
    r.sse_body += "\n\n";
  });
  return r.sse_body;
}

std::string_view message::ws_raw_frame(bool deflated) const {
  auto& r = raw();
  if (!deflated) {
    std::call_once(r.ws_once, [&] { r.ws = protocol::ws_frame(ws_opcode::binary, data_json()); });
    return r.ws;
  }
  std::call_once(r.ws_deflated_once,
                 [&] { r.ws_deflated = protocol::ws_frame(ws_opcode::binary, deflate_message(data_json()), true); });
  return r.ws_deflated;
}

std::string_view message::raw_line(bool with_channel) const {
  auto& r = raw();
  std::call_once(r.line_once, [&] {
    r.line.reserve(channel_.size() + data_json().size() + 2);
    r.line += channel_;
    r.line += ' ';
    r.line += data_json();
    r.line += '\n';
  });
  return with_channel ? std::string_view(r.line) : std::string_view(r.line).substr(channel_.size() + 1);
}

std::size_t message::footprint() const noexcept {
  // Taken when history appends the message, before any subscriber has built a wire form;
  // the raw forms (built later, like the others) count as one pointer.
  return sizeof(message) + channel_.capacity() + event_.capacity() + json_.capacity() + cursor_.capacity() +
         sse_.capacity() + ws_.capacity() + ws_deflated_.capacity();
}

}  // namespace herald::protocol
