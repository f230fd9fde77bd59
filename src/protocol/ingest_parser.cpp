#include "protocol/ingest_parser.hpp"

#include "protocol/json_fields.hpp"
#include "protocol/json_text.hpp"

#include <utility>

namespace herald::protocol {

using util::api_error;

namespace {

api_error too_large(std::string_view what, std::size_t max) {
  return {413, "too_large", std::string(what) + " is larger than the limit of " + std::to_string(max) + " bytes"};
}

}  // namespace

// --- NDJSON ---------------------------------------------------------------------------

std::optional<api_error> ndjson_splitter::feed(std::string_view bytes, std::vector<ingest_item>& out) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const auto piece = bytes.substr(0, nl);
    // A line is bounded before it is whole: whitespace may be dropped by compaction,
    // but not more than this much of it.
    if (line_.size() + piece.size() > 4 * max_ + 1024)
      return too_large("NDJSON line " + std::to_string(line_no_ + 1), max_);
    line_.append(piece);
    if (nl == std::string_view::npos) break;
    bytes.remove_prefix(nl + 1);
    if (auto err = line(out)) return err;
  }
  return std::nullopt;
}

std::optional<api_error> ndjson_splitter::finish(std::vector<ingest_item>& out) {
  if (line_.empty()) return std::nullopt;
  return line(out);
}

std::optional<api_error> ndjson_splitter::line(std::vector<ingest_item>& out) {
  ++line_no_;
  std::string text = std::move(line_);
  line_.clear();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.find_first_not_of(" \t") == std::string::npos) return std::nullopt;  // blank
  if (!valid_json(text))
    return util::bad_request("bad_json", "NDJSON line " + std::to_string(line_no_) + " is not valid JSON");
  auto data = message_data_json(text, max_);
  if (std::holds_alternative<api_error>(data)) return too_large("NDJSON line " + std::to_string(line_no_), max_);
  out.push_back({"", std::move(std::get<std::string>(data))});
  return std::nullopt;
}

// --- Server-Sent Events (the WHATWG "event stream" grammar) --------------------------------

std::optional<api_error> sse_event_parser::feed(std::string_view bytes, std::vector<ingest_item>& out) {
  if (!started_) {
    // A UTF-8 byte-order mark may open the stream, itself split over reads.
    static constexpr std::string_view bom = "\xEF\xBB\xBF";
    head_.append(bytes);
    if (head_.size() < bom.size() && bom.starts_with(head_)) return std::nullopt;  // wait for more
    started_ = true;
    const std::string all = std::move(head_);
    std::string_view rest = all;
    if (rest.starts_with(bom)) rest.remove_prefix(bom.size());
    return feed(rest, out);
  }
  for (char ch : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (ch == '\n') continue;  // "\r\n": the line ended at "\r"
    }
    if (ch == '\r' || ch == '\n') {
      after_cr_ = ch == '\r';
      if (auto err = field(out)) return err;
      continue;
    }
    if (line_.size() > max_ + 64) return too_large("an event's data", max_);
    line_ += ch;
  }
  return std::nullopt;
}

std::optional<api_error> sse_event_parser::field(std::vector<ingest_item>& out) {
  std::string line = std::move(line_);
  line_.clear();
  if (line.empty()) {
    // Dispatch.
    if (has_data_) {
      std::string event = valid_event_name(event_) ? std::move(event_) : std::string();
      std::string data = valid_json(data_) ? compact_json(data_) : json_quote(data_);
      if (data.size() > max_) return too_large("an event's data", max_);
      out.push_back({std::move(event), std::move(data)});
    }
    data_.clear();
    event_.clear();
    has_data_ = false;
    return std::nullopt;
  }
  if (line.front() == ':') return std::nullopt;  // comment
  const auto colon = line.find(':');
  std::string_view name = std::string_view(line).substr(0, colon);
  std::string_view value;
  if (colon != std::string::npos) {
    value = std::string_view(line).substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (name == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
    if (data_.size() > max_) return too_large("an event's data", max_);
  } else if (name == "event") {
    event_.assign(value);
  }
  return std::nullopt;
}

// --- text -------------------------------------------------------------------------------

bool text_deltas::append(std::string_view bytes) {
  if (!v_.feed(bytes)) return false;
  text_.append(bytes);
  return true;
}

std::string text_deltas::take() {
  if (v_.complete()) return std::exchange(text_, std::string());
  // Keep the last character's bytes so far (at most 3, from its lead byte on).
  std::size_t cut = text_.size();
  while (cut > 0 && (static_cast<unsigned char>(text_[cut - 1]) & 0xC0) == 0x80) --cut;
  if (cut > 0) --cut;  // the lead byte
  std::string head = text_.substr(0, cut);
  text_.erase(0, cut);
  return head;
}

}  // namespace herald::protocol
