#include "protocol/json_fields.hpp"

#include <algorithm>
#include <cmath>

#include <algorithm>

#include <boost/json.hpp>

#include "protocol/channel_name.hpp"

namespace herald::protocol {
namespace json = boost::json;
using util::api_error;
using util::bad_request;

bool valid_event_name(std::string_view name) noexcept {
  // "reset" and "token_expired" are the server's own signals.
  if (name.empty() || name.size() > 64 || name == "reset" || name == "token_expired") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string json_quote(std::string_view s) { return json::serialize(json::string_view(s.data(), s.size())); }

std::string error_json(const api_error& e) {
  std::string out = "{\"error\":{\"code\":";
  out += json_quote(e.code);
  out += ",\"message\":";
  out += json_quote(e.message);
  out += "}}";
  return out;
}

namespace {

bool finite_numbers(const json::value& v) {
  if (v.is_double()) return std::isfinite(v.get_double());
  if (const auto* a = v.if_array()) return std::all_of(a->begin(), a->end(), finite_numbers);
  if (const auto* o = v.if_object())
    return std::all_of(o->begin(), o->end(), [](const auto& kv) { return finite_numbers(kv.value()); });
  return true;
}

}  // namespace

std::variant<std::string, api_error> message_data_json(const json::value& data, std::size_t max_data_bytes) {
  if (!finite_numbers(data))
    return bad_request("bad_json", "\"data\" holds a number out of range (JSON numbers must be finite doubles)");
  std::string out = json::serialize(data);
  if (out.size() > max_data_bytes)
    return api_error{413, "too_large",
                     "message data is larger than the limit of " + std::to_string(max_data_bytes) + " bytes"};
  return out;
}

std::variant<publish_fields, api_error> parse_publish(std::string_view body, bool broadcast,
                                                      std::size_t max_data_bytes,
                                                      std::size_t max_broadcast_channels) {
  json::parse_options opts;
  opts.max_depth = 64;
  std::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec, {}, opts);
  if (ec) return bad_request("bad_json", "request body is not valid JSON: " + ec.message());
  const json::object* obj = v.if_object();
  if (!obj) return bad_request("bad_request", "request body must be a JSON object");

  publish_fields out;
  auto check_channel = [&](const json::value& c) -> std::optional<api_error> {
    const json::string* s = c.if_string();
    if (!s) return bad_request("bad_request", "channel names must be strings");
    if (!valid_channel_name(*s))
      return bad_request("invalid_channel",
                         "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
    // A channel named twice in a broadcast is published once.
    if (std::find(out.channels.begin(), out.channels.end(), std::string_view(*s)) == out.channels.end())
      out.channels.emplace_back(s->data(), s->size());
    return std::nullopt;
  };
  if (broadcast) {
    const json::value* cs = obj->if_contains("channels");
    if (!cs) return bad_request("bad_request", "missing field \"channels\"");
    const json::array* arr = cs->if_array();
    if (!arr || arr->empty())
      return bad_request("bad_request", "\"channels\" must be a non-empty array");
    if (arr->size() > max_broadcast_channels)
      return api_error{413, "too_large",
                       "too many channels in one broadcast (max " +
                           std::to_string(max_broadcast_channels) + ")"};
    for (const auto& c : *arr)
      if (auto err = check_channel(c)) return *err;
  } else {
    const json::value* c = obj->if_contains("channel");
    if (!c) return bad_request("bad_request", "missing field \"channel\"");
    if (auto err = check_channel(*c)) return *err;
  }

  const json::value* data = obj->if_contains("data");
  if (!data) return bad_request("bad_request", "missing field \"data\"");
  auto data_json = message_data_json(*data, max_data_bytes);
  if (auto* err = std::get_if<api_error>(&data_json)) return *err;
  out.data_json = std::move(std::get<std::string>(data_json));

  if (const json::value* ev = obj->if_contains("event"); ev && !ev->is_null()) {
    const json::string* s = ev->if_string();
    if (!s || !valid_event_name(*s))
      return bad_request("bad_request", "\"event\" must match [A-Za-z0-9_-]{1,64} and not be \"reset\" or \"token_expired\"");
    out.event.assign(s->data(), s->size());
  }
  return out;
}

}  // namespace herald::protocol
