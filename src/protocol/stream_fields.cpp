#include "protocol/stream_fields.hpp"

#include <algorithm>
#include <vector>

#include "protocol/channel_name.hpp"
#include "protocol/json_text.hpp"
#include "util/parse_decimal.hpp"

namespace herald::protocol {

using util::api_error;
using util::bad_request;

namespace {

const json_member* find(const std::vector<json_member>& members, std::string_view key) {
  for (const auto& m : members)
    if (m.key == key) return &m;
  return nullptr;
}

// The members of an object body, each named key at most once.
std::variant<std::vector<json_member>, api_error> object_members(std::string_view body,
                                                                 std::initializer_list<std::string_view> keys) {
  if (!valid_json(body)) return bad_request("bad_json", "request body is not valid JSON");
  auto members = json_members(body);
  if (!members) return bad_request("bad_request", "request body must be a JSON object");
  for (auto key : keys)
    if (std::count_if(members->begin(), members->end(), [&](const auto& m) { return m.key == key; }) > 1)
      return bad_request("bad_request", "field \"" + std::string(key) + "\" appears twice");
  return std::move(*members);
}

std::optional<api_error> read_channel(const std::vector<json_member>& members, std::string& out) {
  const json_member* c = find(members, "channel");
  if (!c) return bad_request("bad_request", "missing field \"channel\"");
  auto name = json_string(c->value);
  if (!name) return bad_request("bad_request", "\"channel\" must be a string");
  if (!valid_channel_name(*name))
    return bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
  out = std::move(*name);
  return std::nullopt;
}

std::optional<api_error> read_reason(const std::vector<json_member>& members, std::string& out) {
  const json_member* r = find(members, "reason");
  if (!r || r->value == "null") return std::nullopt;
  auto text = json_string(r->value);
  if (!text) return bad_request("bad_request", "\"reason\" must be a string");
  if (text->size() > max_reason_bytes)
    return api_error{413, "too_large", "\"reason\" is longer than " + std::to_string(max_reason_bytes) + " bytes"};
  out = std::move(*text);
  return std::nullopt;
}

}  // namespace

std::variant<stream_end_fields, api_error> parse_stream_end(std::string_view body) {
  auto parsed = object_members(body, {"channel", "state", "reason", "expected_offset"});
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const auto& members = std::get<std::vector<json_member>>(parsed);
  stream_end_fields out;
  if (auto err = read_channel(members, out.channel)) return *err;
  const json_member* st = find(members, "state");
  if (!st) return bad_request("bad_request", "missing field \"state\"");
  auto state = json_string(st->value);
  if (!state || (*state != state_completed && *state != state_error))
    return bad_request("bad_request", "\"state\" must be \"completed\" or \"error\"");
  out.state = std::move(*state);
  if (auto err = read_reason(members, out.reason)) return *err;
  if (const json_member* ex = find(members, "expected_offset"); ex && ex->value != "null") {
    auto n = util::parse_decimal(ex->value, util::query_integer_max);
    if (!n || *n == 0) return bad_request("bad_request", "\"expected_offset\" must be a positive integer");
    out.expected_offset = *n;
  }
  return out;
}

std::variant<stream_stop_fields, api_error> parse_stream_stop(std::string_view body) {
  auto parsed = object_members(body, {"channel", "reason"});
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const auto& members = std::get<std::vector<json_member>>(parsed);
  stream_stop_fields out;
  if (auto err = read_channel(members, out.channel)) return *err;
  if (auto err = read_reason(members, out.reason)) return *err;
  return out;
}

std::string end_data_json(std::string_view state, std::string_view reason) {
  std::string out = "{\"state\":" + json_quote(state) + ",\"reason\":";
  out += reason.empty() ? std::string("null") : json_quote(reason);
  out += '}';
  return out;
}

}  // namespace herald::protocol
