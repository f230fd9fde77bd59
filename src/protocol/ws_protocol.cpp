#include "protocol/ws_protocol.hpp"

#include <cstdint>
#include <vector>

#include "protocol/channel_name.hpp"
#include "protocol/json_fields.hpp"
#include "protocol/json_text.hpp"
#include "protocol/replies.hpp"
#include "util/parse_decimal.hpp"

namespace herald::protocol {
using util::bad_request;

namespace {

const json_member* member(const std::vector<json_member>& members, std::string_view key) {
  for (const auto& m : members)
    if (m.key == key) return &m;
  return nullptr;
}

// A non-negative JSON number as written (its text is valid JSON: no sign check needed
// beyond the first character).
bool non_negative_number(std::string_view v) noexcept { return !v.empty() && v.front() >= '0' && v.front() <= '9'; }

bool non_negative_integer(std::string_view v) noexcept {
  return non_negative_number(v) && v.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::variant<ws_command, ws_command_error> parse_ws_command(std::string_view text, std::size_t max_data_bytes) {
  if (!valid_json(text)) return ws_command_error{"null", bad_request("bad_json", "message is not valid JSON")};
  auto members = json_members(text);
  if (!members) return ws_command_error{"null", bad_request("bad_request", "message must be a JSON object")};

  ws_command cmd;
  // The id is echoed as the client wrote it (a number keeps its spelling).
  const json_member* id = member(*members, "id");
  auto id_string = id ? json_string(id->value) : std::nullopt;
  if (!id || (id_string ? id_string->size() > 64 : !non_negative_number(id->value) || id->value.size() > 64))
    return ws_command_error{
        "null", bad_request("bad_request", "\"id\" must be a non-negative number or a string of at most 64 bytes")};
  cmd.id = id->value;
  auto error = [&](std::string code, std::string message) {
    return ws_command_error{cmd.id, bad_request(std::move(code), std::move(message))};
  };

  const json_member* method = member(*members, "method");
  auto m = method ? json_string(method->value) : std::nullopt;
  if (!m) return error("bad_request", "missing \"method\"");
  if (*m == "subscribe")
    cmd.method = ws_method::subscribe;
  else if (*m == "unsubscribe")
    cmd.method = ws_method::unsubscribe;
  else if (*m == "publish")
    cmd.method = ws_method::publish;
  else if (*m == "history")
    cmd.method = ws_method::history;
  else if (*m == "stop")
    cmd.method = ws_method::stop;
  else if (*m == "presence")
    cmd.method = ws_method::presence;
  else if (*m == "ping")
    return cmd;
  else
    return error("bad_request", "unknown method " + json_quote(std::string_view(*m).substr(0, 32)));

  const json_member* ch = member(*members, "channel");
  auto channel = ch ? json_string(ch->value) : std::nullopt;
  if (!channel) return error("bad_request", "missing \"channel\"");
  if (!valid_channel_name(*channel))
    return error("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
  cmd.channel = std::move(*channel);

  if (const json_member* since = member(*members, "since"); since && since->value != "null") {
    auto s = json_string(since->value);
    if (!s || s->empty()) return error("bad_cursor", "\"since\" must be a cursor string");
    cmd.since = std::move(*s);
  }
  if (cmd.method == ws_method::subscribe) {
    if (const json_member* format = member(*members, "format"); format && format->value != "null") {
      auto f = json_string(format->value);
      if (!f || (*f != "raw" && *f != "json")) return error("bad_request", "\"format\" must be \"raw\" or \"json\"");
      cmd.raw = *f == "raw";
    }
  }
  if (cmd.method == ws_method::history || cmd.method == ws_method::presence) {
    if (const json_member* limit = member(*members, "limit")) {
      std::uint64_t n = 0;
      if (!non_negative_integer(limit->value)) return error("bad_request", "\"limit\" must be a non-negative integer");
      // Digits only; past 19 of them the limit is clamped anyway.
      for (char c : limit->value.substr(0, 19)) n = n * 10 + static_cast<std::uint64_t>(c - '0');
      cmd.limit = limit->value.size() > 19 ? SIZE_MAX : static_cast<std::size_t>(n);
    }
  }
  if (cmd.method == ws_method::stop) {
    if (const json_member* r = member(*members, "reason"); r && r->value != "null") {
      auto s = json_string(r->value);
      if (!s || s->size() > 1024) return error("bad_request", "\"reason\" must be a string of at most 1024 bytes");
      cmd.reason = std::move(*s);
    }
  }
  if (cmd.method == ws_method::publish) {
    const json_member* data = member(*members, "data");
    if (!data) return error("bad_request", "missing \"data\"");
    auto data_json = message_data_json(data->value, max_data_bytes);
    if (auto* err = std::get_if<util::api_error>(&data_json)) return ws_command_error{cmd.id, std::move(*err)};
    cmd.data_json = std::move(std::get<std::string>(data_json));
    if (const json_member* ev = member(*members, "event"); ev && ev->value != "null") {
      auto s = json_string(ev->value);
      if (!s || !valid_event_name(*s)) return error("bad_request", "\"event\" must match [A-Za-z0-9_-]{1,64}");
      cmd.event = std::move(*s);
    }
    if (const json_member* ex = member(*members, "expected_offset"); ex && ex->value != "null") {
      auto n = util::parse_decimal(ex->value, util::query_integer_max);
      if (!n || *n == 0) return error("bad_request", "\"expected_offset\" must be a positive integer");
      cmd.expected_offset = *n;
    }
    if (auto err = parse_ephemeral(*members, cmd.ephemeral)) return ws_command_error{cmd.id, std::move(*err)};
  }
  return cmd;
}

std::string ws_reply(std::string_view id, std::string_view result_json) {
  std::string out;
  out.reserve(id.size() + result_json.size() + 20);
  out += "{\"id\":";
  out += id;
  out += ",\"result\":";
  out += result_json;
  out += '}';
  return out;
}

std::string ws_error_reply(std::string_view id, const util::api_error& e) {
  std::string body = error_json(e);  // {"error":{...}}
  std::string out = "{\"id\":";
  out += id;
  out += ',';
  out += std::string_view(body).substr(1);
  return out;
}

}  // namespace herald::protocol
