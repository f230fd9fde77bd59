#include "transport/subscribe_request.hpp"

#include <algorithm>

#include "protocol/channel_name.hpp"
#include "util/parse_decimal.hpp"

namespace herald::transport {

using util::api_error;
using util::bad_request;

namespace {

std::optional<std::uint64_t> parse_int(std::string_view s) { return util::parse_decimal(s, util::query_integer_max); }

}  // namespace

std::variant<subscribe_request, api_error> parse_subscribe_request(boost::urls::params_view params,
                                                                   std::string_view last_event_id,
                                                                   const options& opts) {
  subscribe_request r;
  r.timeout = opts.poll_timeout;
  r.limit = opts.poll_limit;
  std::vector<std::string> since;
  for (auto p : params) {
    if (p.key == "channel") {
      if (!protocol::valid_channel_name(p.value))
        return bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
      if (std::find(r.channels.begin(), r.channels.end(), p.value) != r.channels.end()) continue;
      if (r.channels.size() == opts.max_channels_per_connection)
        return api_error{429, "too_many_channels",
                         "at most " + std::to_string(opts.max_channels_per_connection) + " channels per connection"};
      r.channels.push_back(p.value);
    } else if (p.key == "since") {
      // Repeatable: cursors of single channels (e.g. from WebSocket pushes) combine.
      if (p.value == "earliest")
        r.earliest = true;
      else if (!p.value.empty())
        since.push_back(p.value);
    } else if (p.key == "timeout") {
      auto v = parse_int(p.value);
      if (!v) return bad_request("bad_request", "timeout must be a non-negative integer (seconds)");
      r.timeout = std::min(std::chrono::seconds(static_cast<std::chrono::seconds::rep>(*v)), opts.poll_timeout_max);
    } else if (p.key == "format") {
      if (p.value != "raw" && p.value != "json") return bad_request("bad_request", "format must be raw or json");
      r.raw = p.value == "raw";
    } else if (p.key == "limit") {
      auto v = parse_int(p.value);
      if (!v || *v == 0) return bad_request("bad_request", "limit must be a positive integer");
      r.limit = std::min<std::size_t>(static_cast<std::size_t>(*v), opts.poll_limit_max);
    }
  }
  if (r.channels.empty()) return bad_request("bad_request", "at least one channel parameter is required");
  if (!last_event_id.empty()) since = {std::string(last_event_id)};
  if (since.size() > opts.max_channels_per_connection) return bad_request("bad_cursor", "too many since parameters");
  for (const auto& token : since) {
    auto entries = protocol::decode_cursor(token);
    if (!entries) return bad_request("bad_cursor", "since / Last-Event-ID is not a valid cursor");
    for (const auto& e : *entries) {
      auto same = std::find_if(r.since.begin(), r.since.end(), [&](auto& x) { return x.tag == e.tag; });
      if (same != r.since.end())
        *same = e;
      else
        r.since.push_back(e);
    }
  }
  return r;
}

}  // namespace herald::transport
