// Fuzz target: the JSON a client sends, as a WebSocket command
// (protocol::parse_ws_command, protocol/ws_protocol.hpp) and as the body of a publish or
// broadcast request (protocol::parse_publish, protocol/json_fields.hpp).
//
// Properties:
//  - no crash, no undefined behaviour, on any bytes;
//  - every refusal is a client error (status 4xx) with a code and a message, and the
//    replies built from it (ws_error_reply, error_json) are valid JSON;
//  - a parsed command that names a channel (every method but ping) names a valid one; its
//    id is the JSON of a non-negative integer or a short string; a publish carries
//    compact JSON data within the size limit and a valid or empty event name;
//  - a parsed publish or broadcast names 1..max distinct valid channels, one for publish,
//    and carries data and event as above.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json.hpp>

#include "fuzz_check.hpp"
#include "protocol/channel_name.hpp"
#include "protocol/json_fields.hpp"
#include "protocol/json_text.hpp"
#include "protocol/replies.hpp"
#include "protocol/ws_protocol.hpp"

namespace p = herald::protocol;
namespace json = boost::json;

namespace {

constexpr std::size_t max_data = 1024;  // small, so the fuzzer reaches the limit
constexpr std::size_t max_broadcast = 8;

bool is_json(std::string_view s) {
  std::error_code ec;
  json::parse(json::string_view(s.data(), s.size()), ec);
  return !ec;
}

void check_error(const herald::util::api_error& e) {
  FUZZ_CHECK(e.status >= 400 && e.status < 500, "a refusal is a client error (4xx)");
  FUZZ_CHECK(!e.code.empty() && !e.message.empty(), "a refusal has a code and a message");
  FUZZ_CHECK(is_json(p::error_json(e)), "an error body is valid JSON");
}

void check_data_and_event(std::string_view text, const std::string& data_json, const std::string& event) {
  FUZZ_CHECK(data_json.size() <= max_data, "data is within the size limit");
  FUZZ_CHECK(is_json(data_json), "data is valid JSON, kept as written");
  FUZZ_CHECK(event.empty() || p::valid_event_name(event), "an event name is valid");
}

void ws_command(std::string_view text) {
  auto r = p::parse_ws_command(text, max_data);
  if (auto* err = std::get_if<p::ws_command_error>(&r)) {
    check_error(err->error);
    FUZZ_CHECK(is_json(err->id), "the echoed id is JSON");
    FUZZ_CHECK(is_json(p::ws_error_reply(err->id, err->error)), "an error reply is valid JSON");
    return;
  }
  const auto& cmd = std::get<p::ws_command>(r);
  const auto id = json::parse(cmd.id);
  FUZZ_CHECK(id.is_uint64() || id.is_int64() || (id.is_string() && id.get_string().size() <= 64),
             "the id is a non-negative integer or a string of at most 64 bytes");
  if (id.is_int64()) FUZZ_CHECK(id.get_int64() >= 0, "an integer id is non-negative");
  FUZZ_CHECK(is_json(p::ws_reply(cmd.id, "{}")), "a reply is valid JSON");
  if (cmd.method != p::ws_method::ping)
    FUZZ_CHECK(p::valid_channel_name(cmd.channel), "a command's channel is valid");
  if (cmd.method == p::ws_method::publish) check_data_and_event(text, cmd.data_json, cmd.event);
}

void publish(std::string_view body, bool broadcast) {
  auto r = p::parse_publish(body, broadcast, max_data, max_broadcast);
  if (auto* err = std::get_if<herald::util::api_error>(&r)) return check_error(*err);
  const auto& f = std::get<p::publish_fields>(r);
  FUZZ_CHECK(!f.channels.empty() && f.channels.size() <= (broadcast ? max_broadcast : 1),
             "a publish names 1..max channels");
  for (std::size_t i = 0; i < f.channels.size(); ++i) {
    FUZZ_CHECK(p::valid_channel_name(f.channels[i]), "a published channel is valid");
    FUZZ_CHECK(std::count(f.channels.begin(), f.channels.end(), f.channels[i]) == 1, "channels are distinct");
  }
  check_data_and_event(body, f.data_json, f.event);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ws_command(text);
  publish(text, false);
  publish(text, true);
  return 0;
}
