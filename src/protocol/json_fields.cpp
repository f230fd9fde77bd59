#include "protocol/json_fields.hpp"

#include <algorithm>

#include "protocol/channel_name.hpp"
#include "protocol/json_text.hpp"
#include "util/parse_decimal.hpp"

namespace herald::protocol {
using util::api_error;
using util::bad_request;

bool valid_event_name(std::string_view name) noexcept {
  // "reset", "token_expired", "end", "join" and "leave" are the server's own signals.
  if (name.empty() || name.size() > 64 || name == "reset" || name == "token_expired" || name == "end" ||
      name == "join" || name == "leave")
    return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::variant<std::string, api_error> message_data_json(std::string_view value, std::size_t max_data_bytes) {
  std::string out = compact_json(value);
  if (out.size() > max_data_bytes)
    return api_error{413, "too_large",
                     "message data is larger than the limit of " + std::to_string(max_data_bytes) + " bytes"};
  return out;
}

namespace {

const json_member* find_member(const std::vector<json_member>& members, std::string_view key) {
  for (const auto& m : members)
    if (m.key == key) return &m;
  return nullptr;
}

std::optional<api_error> duplicate_member(const std::vector<json_member>& members,
                                          std::initializer_list<std::string_view> keys) {
  for (auto key : keys)
    if (std::count_if(members.begin(), members.end(), [&](const auto& m) { return m.key == key; }) > 1)
      return bad_request("bad_request", "field \"" + std::string(key) + "\" appears twice");
  return std::nullopt;
}

}  // namespace

std::optional<api_error> parse_ephemeral(const std::vector<json_member>& members, bool& ephemeral) {
  ephemeral = false;
  const json_member* e = find_member(members, "ephemeral");
  if (!e || e->value == "false" || e->value == "null") return std::nullopt;
  if (e->value != "true") return bad_request("bad_request", "\"ephemeral\" must be true or false");
  ephemeral = true;
  return std::nullopt;
}

std::variant<publish_fields, api_error> parse_publish(std::string_view body, bool broadcast, std::size_t max_data_bytes,
                                                      std::size_t max_broadcast_channels) {
  if (!valid_json(body)) return bad_request("bad_json", "request body is not valid JSON");
  auto members = json_members(body);
  if (!members) return bad_request("bad_request", "request body must be a JSON object");
  if (auto err = duplicate_member(*members, {"channel", "channels", "data", "event", "expected_offset", "ephemeral"}))
    return *err;

  publish_fields out;
  auto add_channel = [&](std::string_view text) -> std::optional<api_error> {
    auto name = json_string(text);
    if (!name) return bad_request("bad_request", "channel names must be strings");
    if (!valid_channel_name(*name))
      return bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
    // A channel named twice in a broadcast is published once.
    if (std::find(out.channels.begin(), out.channels.end(), *name) == out.channels.end())
      out.channels.push_back(std::move(*name));
    return std::nullopt;
  };
  if (broadcast) {
    const json_member* cs = find_member(*members, "channels");
    if (!cs) return bad_request("bad_request", "missing field \"channels\"");
    auto items = json_elements(cs->value);
    if (!items || items->empty()) return bad_request("bad_request", "\"channels\" must be a non-empty array");
    if (items->size() > max_broadcast_channels)
      return api_error{413, "too_large",
                       "too many channels in one broadcast (max " + std::to_string(max_broadcast_channels) + ")"};
    for (auto item : *items)
      if (auto err = add_channel(item)) return *err;
  } else {
    const json_member* c = find_member(*members, "channel");
    if (!c) return bad_request("bad_request", "missing field \"channel\"");
    if (auto err = add_channel(c->value)) return *err;
  }

  const json_member* data = find_member(*members, "data");
  if (!data) return bad_request("bad_request", "missing field \"data\"");
  auto data_json = message_data_json(data->value, max_data_bytes);
  if (auto* err = std::get_if<api_error>(&data_json)) return *err;
  out.data_json = std::move(std::get<std::string>(data_json));

  if (const json_member* ev = find_member(*members, "event"); ev && ev->value != "null") {
    auto name = json_string(ev->value);
    if (!name || !valid_event_name(*name))
      return bad_request("bad_request",
                         "\"event\" must match [A-Za-z0-9_-]{1,64} and not be \"reset\", \"token_expired\", \"end\", "
                         "\"join\" or \"leave\"");
    out.event = std::move(*name);
  }
  if (const json_member* ex = find_member(*members, "expected_offset"); ex && ex->value != "null") {
    if (broadcast) return bad_request("bad_request", "\"expected_offset\" is for a publish to one channel");
    auto n = util::parse_decimal(ex->value, util::query_integer_max);
    if (!n || *n == 0) return bad_request("bad_request", "\"expected_offset\" must be a positive integer");
    out.expected_offset = *n;
  }
  if (auto err = parse_ephemeral(*members, out.ephemeral)) return *err;
  if (out.ephemeral && out.expected_offset)
    return bad_request("bad_request", "\"expected_offset\" does not apply to an ephemeral message (it has no offset)");
  return out;
}

}  // namespace herald::protocol
