#pragma once
// The subscription parameters shared by GET /sse and GET /poll:
// channel=A&channel=B (repeatable), since=CURSOR (repeatable: the cursors combine, a
// later one winning for the same channel) or the Last-Event-ID header, since=earliest
// (channels no cursor covers start at the oldest message history holds),
// and for long polling timeout=S and limit=N; format=raw|json (the last one wins).
#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include <boost/url/params_view.hpp>

#include "protocol/cursor.hpp"
#include "transport/options.hpp"
#include "util/api_error.hpp"

namespace herald::transport {

struct subscribe_request {
  std::vector<std::string> channels;          // valid, distinct
  std::vector<protocol::cursor_entry> since;  // empty: start at "now"
  bool earliest = false;                      // since=earliest: channels the cursor lacks start at the oldest held
  std::chrono::seconds timeout{0};            // long polling only
  std::size_t limit = 0;                      // long polling only
  bool raw = false;                           // format=raw (docs/protocol.md "Raw formats")
};

/// Parses and validates the parameters; Last-Event-ID (sent by a reconnecting
/// EventSource) wins over `since`.
std::variant<subscribe_request, util::api_error> parse_subscribe_request(boost::urls::params_view params,
                                                                         std::string_view last_event_id,
                                                                         const options& opts);

}  // namespace herald::transport
