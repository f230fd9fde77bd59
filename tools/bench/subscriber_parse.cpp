#include "clients.hpp"

#include "http_head.hpp"

// The subscriber's parsers: one per transport, over the shared head reader
// (http_head.hpp). A message is found by its "n" and "t" in the payload (on_payload).
namespace herald::bench {

namespace {

// An SSE field's value: after the name's colon, less one optional space.
std::string_view field_value(std::string_view line, std::size_t colon_end) {
  auto v = line.substr(colon_end);
  return v.starts_with(' ') ? v.substr(1) : v;
}

// herald's raw long-poll reply: "<cursor>[ reset <channel>...][ end ...]\n", then one
// line of data per message.
void parse_raw_poll(std::string_view body, std::string& cursor, auto&& on_reset, auto&& on_payload) {
  const auto nl = body.find('\n');
  const auto first = body.substr(0, nl);
  cursor.assign(first.substr(0, first.find(' ')));
  if (first.find(" reset ") != std::string_view::npos) on_reset();
  if (nl == std::string_view::npos) return;
  for (auto rest = body.substr(nl + 1); !rest.empty();) {
    const auto end = rest.find('\n');
    on_payload(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  }
}

}  // namespace

void subscriber::parse() {
  if (t_ == transport::ws) return parse_ws();
  if (t_ == transport::sse) return parse_sse();
  parse_poll();
}

void subscriber::parse_ws() {
  if (!headers_done_) {
    auto head = read_head(in_);
    if (!head) return;
    headers_done_ = true;
    if (head->status != 101) return refused();
    if (d_ != dialect::herald) ++totals_.connected;  // subscribed by the URL itself
    in_.erase(0, head->size);
  }
  const auto used = ws_frames(in_, [&](std::string_view payload) {
    if (stopped_) return;
    auto keep = [&] {
      if (!keep_cursor_) return;
      auto c = string_after_last(payload, "\"cursor\":\"");
      if (!c.empty()) cursor_.assign(c);
    };
    if (payload.starts_with("{\"reset\"")) {
      keep();
      on_reset();
    } else if (payload.starts_with("{\"id\":1,\"result\"")) {
      ++totals_.connected;
      keep();  // the position before the replayed pushes
      if (payload.find("\"recovered\":false") != std::string_view::npos) on_reset();
    } else if (payload.starts_with("{\"id\":1,\"error\"")) {
      refused();  // e.g. bad_cursor: not a subscriber
    } else if (payload.find("\"t\":") != std::string_view::npos) {
      on_payload(payload);
      keep();
    }
  });
  in_.erase(0, used);
}

void subscriber::parse_sse() {
  if (!headers_done_) {
    auto head = read_head(in_);
    if (!head) return;
    headers_done_ = true;
    if (head->status != 200) return refused();
    ++totals_.connected;
    in_.erase(0, head->size);
  }
  std::size_t pos = 0;
  for (;;) {
    auto nl = in_.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string_view line(in_.data() + pos, nl - pos);
    if (line == "event: reset")
      on_reset();
    else if (line.starts_with("data:"))
      on_payload(field_value(line, 5));  // herald's raw events write no space after the colon
    else if (keep_cursor_ && line.starts_with("id:"))
      event_id_.assign(field_value(line, 3));
    else if (line.empty() && !event_id_.empty())
      cursor_.swap(event_id_), event_id_.clear();  // the event is whole
    pos = nl + 1;
  }
  in_.erase(0, pos);
}

// Long polling: one response per request, then the next poll with the new cursor.
void subscriber::parse_poll() {
  for (;;) {
    if (!headers_done_) {
      auto head = read_head(in_);
      if (!head) return;
      if (!head->ok()) return refused();
      body_left_ = head->content_length;
      if (d_ == dialect::peer)  // Nchan long polling: the next request carries these two back
        cursor_ = "If-Modified-Since: " + std::string(head->header("Last-Modified")) +
                  "\r\nIf-None-Match: " + std::string(head->header("Etag")) + "\r\n";
      headers_done_ = true;
      in_.erase(0, head->size);
    }
    if (in_.size() < body_left_) return;
    std::string_view body(in_.data(), body_left_);
    if (!connected_once_) {
      connected_once_ = true;
      ++totals_.connected;
    }
    if (d_ != dialect::herald) {
      on_payload(body);  // one raw message per reply
    } else if (raw_) {
      parse_raw_poll(
          body, cursor_, [&] { on_reset(); }, [&](std::string_view line) { on_payload(line); });
    } else {
      if (body.find("\"recovered\":false") != std::string_view::npos) on_reset();
      for (auto p = body.find("{\"channel\""); p != std::string_view::npos; p = body.find("{\"channel\"", p + 1))
        on_payload(body.substr(p, body.find("}}", p) - p));
      if (auto c = string_after_last(body, "\"cursor\":\""); !c.empty()) cursor_.assign(c);
    }
    in_.erase(0, body_left_);
    if (!stopped_) send_poll();
  }
}

}  // namespace herald::bench
