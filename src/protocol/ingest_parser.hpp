#pragma once
// A producer's body turned into messages as it arrives (POST /api/stream,
// docs/streams.md): NDJSON lines, the events of an upstream SSE response, and text
// deltas cut on character boundaries. Fed in pieces of any size (a read may end in the
// middle of a line, a "\r\n" or a UTF-8 character); memory is bounded by the limits
// given. Pure: no I/O, no clock (coalescing in time is the transport's).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/utf8.hpp"
#include "util/api_error.hpp"

namespace herald::protocol {

/// One message to publish: its event name (empty: none) and its data as compact JSON.
struct ingest_item {
  std::string event;
  std::string data_json;
};

/// application/x-ndjson: each line is one message's data (blank lines are skipped, "\r\n"
/// is accepted). A line that is not JSON is a 400 bad_json, one whose data is over
/// `max_data_bytes` a 413 too_large; both name the line.
class ndjson_splitter {
 public:
  explicit ndjson_splitter(std::size_t max_data_bytes) : max_(max_data_bytes) {}
  std::optional<util::api_error> feed(std::string_view bytes, std::vector<ingest_item>& out);
  /// The body ended: its last line may lack a newline.
  std::optional<util::api_error> finish(std::vector<ingest_item>& out);

 private:
  std::optional<util::api_error> line(std::vector<ingest_item>& out);
  std::string line_;
  std::size_t max_;
  std::size_t line_no_ = 0;
};

/// text/event-stream (an upstream model's response piped as it is): each event's data
/// (its data lines joined by "\n") is one message: kept as JSON when it is valid JSON
/// (OpenAI's and Anthropic's chunks are), else sent as a JSON string ("[DONE]"). The
/// event name travels with it when it is a valid one that herald does not reserve.
/// Comments, id and retry are dropped; an event cut off by the end of the body is
/// dropped, as EventSource does. Data over `max_data_bytes`: 413 too_large.
class sse_event_parser {
 public:
  explicit sse_event_parser(std::size_t max_data_bytes) : max_(max_data_bytes) {}
  std::optional<util::api_error> feed(std::string_view bytes, std::vector<ingest_item>& out);

 private:
  std::optional<util::api_error> field(std::vector<ingest_item>& out);
  std::string line_, data_, event_, head_;
  std::size_t max_;
  bool has_data_ = false;
  bool after_cr_ = false;  // the last byte was "\r": a "\n" right after it ends nothing more
  bool started_ = false;   // past a leading byte-order mark
};

/// text/plain: deltas gathered until the transport takes them, handed out as whole
/// UTF-8 characters (a character split over two reads waits for its end).
class text_deltas {
 public:
  /// False at the first byte that cannot be UTF-8 (the body is not text).
  bool append(std::string_view bytes);
  std::size_t size() const noexcept { return text_.size(); }
  /// Every complete character gathered (may be empty), removed from the buffer.
  std::string take();
  /// True when what was fed ends on a character boundary (at the end of the body).
  bool complete() const noexcept { return v_.complete(); }

 private:
  std::string text_;
  utf8_validator v_;
};

}  // namespace herald::protocol
