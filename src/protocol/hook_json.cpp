#include "protocol/hook_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "protocol/json_text.hpp"

namespace herald::protocol {

namespace json = boost::json;

const char* hook_name(hook_kind k) noexcept {
  switch (k) {
    case hook_kind::connect:
      return "connect";
    case hook_kind::subscribe:
      return "subscribe";
    case hook_kind::publish:
      return "publish";
  }
  return "?";
}

std::string hook_request_json(const hook_call& c) {
  std::string out = "{\"hook\":\"";
  out += hook_name(c.kind);
  out += "\",\"user\":";
  out += c.user.empty() ? "null" : json_quote(c.user);
  out += ",\"client\":" + json_quote(c.client);
  out += ",\"transport\":" + json_quote(c.transport);
  if (!c.channel.empty()) out += ",\"channel\":" + json_quote(c.channel);
  if (!c.channels.empty()) out += ",\"channels\":" + c.channels;
  if (c.kind == hook_kind::publish) {
    if (!c.event.empty()) out += ",\"event\":" + json_quote(c.event);
    out += ",\"data\":" + (c.data_json.empty() ? std::string("null") : c.data_json);
    if (c.ephemeral) out += ",\"ephemeral\":true";
  }
  out += '}';
  return out;
}

std::variant<hook_decision, std::string> parse_hook_reply(std::string_view body) {
  // A DOM is fine here: the reply is bounded (hook_client caps it) and read once.
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return std::string("the reply is not valid JSON");
  auto* obj = v.if_object();
  if (!obj) return std::string("the reply is not a JSON object");
  auto* allow = obj->if_contains("allow");
  if (!allow || !allow->is_bool()) return std::string("the reply has no boolean \"allow\"");
  hook_decision d;
  d.allow = allow->as_bool();
  if (auto* code = obj->if_contains("code")) {
    if (!code->is_int64() || code->as_int64() < 4000 || code->as_int64() > 4999)
      return std::string("\"code\" must be an integer 4000-4999");
    d.code = static_cast<int>(code->as_int64());
  }
  if (auto* msg = obj->if_contains("message")) {
    if (!msg->is_string()) return std::string("\"message\" must be a string");
    d.message = std::string(msg->as_string().data(), std::min<std::size_t>(msg->as_string().size(), 200));
  }
  if (obj->contains("data")) {
    // The data as the backend wrote it (numbers keep their spelling), not re-serialized.
    const auto members = json_members(body);  // kept: the loop reads into it
    for (const auto& m : *members)
      if (m.key == "data") d.data = compact_json(m.value);
  }
  return d;
}

std::string replace_publish_data(std::string_view publish_body, std::string_view data_json) {
  auto members = json_members(publish_body);
  if (!members) return std::string(publish_body);
  std::string out = "{";
  for (const auto& m : *members) {
    if (m.key == "data") continue;
    out += json_quote(m.key) + ":" + std::string(m.value) + ",";
  }
  out += "\"data\":" + std::string(data_json) + "}";
  return out;
}

}  // namespace herald::protocol
