#include "protocol/ws_protocol.hpp"

#include <boost/json.hpp>

#include "protocol/channel_name.hpp"
#include "protocol/json_fields.hpp"

namespace herald::protocol {
namespace json = boost::json;
using util::bad_request;

std::variant<ws_command, ws_command_error> parse_ws_command(std::string_view text, std::size_t max_data_bytes) {
  json::parse_options opts;
  opts.max_depth = 64;
  std::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec) return ws_command_error{"null", bad_request("bad_json", "message is not valid JSON: " + ec.message())};
  const json::object* obj = v.if_object();
  if (!obj) return ws_command_error{"null", bad_request("bad_request", "message must be a JSON object")};

  ws_command cmd;
  const json::value* id = obj->if_contains("id");
  if (!id || !(id->is_uint64() || (id->is_int64() && id->get_int64() >= 0) || id->is_string()) ||
      (id->is_string() && id->get_string().size() > 64))
    return ws_command_error{"null", bad_request("bad_request", "\"id\" must be a non-negative integer or a string of at most 64 bytes")};
  cmd.id = json::serialize(*id);
  auto error = [&](std::string code, std::string message) {
    return ws_command_error{cmd.id, bad_request(std::move(code), std::move(message))};
  };

  const json::value* method = obj->if_contains("method");
  const json::string* m = method ? method->if_string() : nullptr;
  if (!m) return error("bad_request", "missing \"method\"");
  if (*m == "subscribe") cmd.method = ws_method::subscribe;
  else if (*m == "unsubscribe") cmd.method = ws_method::unsubscribe;
  else if (*m == "publish") cmd.method = ws_method::publish;
  else if (*m == "history") cmd.method = ws_method::history;
  else if (*m == "ping") return cmd;
  else return error("bad_request", "unknown method \"" + std::string(m->subview().substr(0, 32)) + "\"");

  const json::value* ch = obj->if_contains("channel");
  const json::string* chs = ch ? ch->if_string() : nullptr;
  if (!chs) return error("bad_request", "missing \"channel\"");
  if (!valid_channel_name(*chs))
    return error("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
  cmd.channel.assign(chs->data(), chs->size());

  if (const json::value* since = obj->if_contains("since"); since && !since->is_null()) {
    const json::string* s = since->if_string();
    if (!s) return error("bad_cursor", "\"since\" must be a cursor string");
    cmd.since.assign(s->data(), s->size());
  }
  if (cmd.method == ws_method::history) {
    if (const json::value* limit = obj->if_contains("limit")) {
      if (!limit->is_uint64() && !(limit->is_int64() && limit->get_int64() >= 0))
        return error("bad_request", "\"limit\" must be a non-negative integer");
      cmd.limit = static_cast<std::size_t>(limit->to_number<std::uint64_t>());
    }
  }
  if (cmd.method == ws_method::publish) {
    const json::value* data = obj->if_contains("data");
    if (!data) return error("bad_request", "missing \"data\"");
    auto data_json = message_data_json(*data, max_data_bytes);
    if (auto* err = std::get_if<util::api_error>(&data_json)) return ws_command_error{cmd.id, std::move(*err)};
    cmd.data_json = std::move(std::get<std::string>(data_json));
    if (const json::value* ev = obj->if_contains("event"); ev && !ev->is_null()) {
      const json::string* s = ev->if_string();
      if (!s || !valid_event_name(*s)) return error("bad_request", "\"event\" must match [A-Za-z0-9_-]{1,64}");
      cmd.event.assign(s->data(), s->size());
    }
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
