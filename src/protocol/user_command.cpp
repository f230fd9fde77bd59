#include "protocol/user_command.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "protocol/channel_name.hpp"
#include "protocol/json_text.hpp"

namespace herald::protocol {

namespace json = boost::json;
using util::api_error;

namespace {

constexpr std::size_t max_user_bytes = 1024;
constexpr std::size_t max_reason_bytes = 120;  // a close frame's reason fits 123 bytes

const char* op_name(user_command::op o) {
  return o == user_command::op::disconnect  ? "disconnect"
         : o == user_command::op::subscribe ? "subscribe"
                                            : "unsubscribe";
}

std::optional<api_error> read_fields(const json::object& obj, user_command& c) {
  auto* user = obj.if_contains("user");
  if (!user || !user->is_string() || user->as_string().empty())
    return util::bad_request("bad_request", "\"user\" must be a non-empty string (a token's sub)");
  if (user->as_string().size() > max_user_bytes) return util::bad_request("bad_request", "\"user\" is too long");
  c.user = std::string(user->as_string());
  if (c.what != user_command::op::disconnect) {
    auto* ch = obj.if_contains("channel");
    if (!ch || !ch->is_string()) return util::bad_request("bad_request", "missing \"channel\"");
    c.channel = std::string(ch->as_string());
    if (!valid_channel_name(c.channel))
      return util::bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])");
    return std::nullopt;
  }
  bool reconnect = false;
  if (auto* r = obj.if_contains("reconnect")) {
    if (!r->is_bool()) return util::bad_request("bad_request", "\"reconnect\" must be a boolean");
    reconnect = r->as_bool();
  }
  c.code = reconnect ? disconnect_reconnect : disconnect_final;
  if (auto* code = obj.if_contains("code")) {
    if (!code->is_int64() || code->as_int64() < 4000 || code->as_int64() > 4999)
      return util::bad_request("bad_request",
                               "\"code\" must be an integer 4000-4999 (4000-4099: the client reconnects)");
    c.code = static_cast<std::uint16_t>(code->as_int64());
  }
  if (auto* reason = obj.if_contains("reason")) {
    if (!reason->is_string()) return util::bad_request("bad_request", "\"reason\" must be a string");
    if (reason->as_string().size() > max_reason_bytes)
      return util::bad_request("bad_request", "\"reason\" is longer than 120 bytes");
    c.reason = std::string(reason->as_string());
  }
  return std::nullopt;
}

}  // namespace

std::variant<user_command, api_error> parse_user_command(user_command::op what, std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return util::bad_request("bad_json", "body is not valid JSON");
  if (!v.is_object()) return util::bad_request("bad_request", "body must be a JSON object");
  user_command c;
  c.what = what;
  if (auto err = read_fields(v.as_object(), c)) return *err;
  return c;
}

std::string sse_disconnect_event(const user_command& c) {
  return "event: disconnect\ndata: {\"code\":" + std::to_string(c.code) + ",\"reason\":" + json_quote(c.reason) +
         ",\"reconnect\":" + (c.reconnect() ? "true" : "false") + "}\n\n";
}

std::string sse_resubscribe_event(const user_command& c) {
  return std::string("event: resubscribe\ndata: {\"") +
         (c.what == user_command::op::subscribe ? "subscribe" : "unsubscribe") + "\":" + json_quote(c.channel) +
         "}\n\n";
}

std::string ws_unsubscribed_push(std::string_view channel) {
  return "{\"unsubscribed\":{\"channel\":" + json_quote(channel) + "}}";
}

std::string user_command_json(const user_command& c) {
  std::string out = "{\"op\":\"";
  out += op_name(c.what);
  out += "\",\"user\":" + json_quote(c.user);
  if (!c.channel.empty()) out += ",\"channel\":" + json_quote(c.channel);
  if (c.what == user_command::op::disconnect)
    out += ",\"code\":" + std::to_string(c.code) + ",\"reason\":" + json_quote(c.reason);
  out += '}';
  return out;
}

std::optional<user_command> user_command_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& obj = v.as_object();
  auto* op = obj.if_contains("op");
  if (!op || !op->is_string()) return std::nullopt;
  user_command c;
  if (op->as_string() == "disconnect")
    c.what = user_command::op::disconnect;
  else if (op->as_string() == "subscribe")
    c.what = user_command::op::subscribe;
  else if (op->as_string() == "unsubscribe")
    c.what = user_command::op::unsubscribe;
  else
    return std::nullopt;
  if (read_fields(obj, c)) return std::nullopt;
  return c;
}

}  // namespace herald::protocol
