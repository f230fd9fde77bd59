#pragma once
// The JSON of the backend hooks (docs/http-api.md, "Hooks"): what herald POSTs to the
// backend and what the backend answers. Pure data: the HTTP client that carries it is
// transport/hook_client.hpp.
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace herald::protocol {

enum class hook_kind : unsigned char { connect, subscribe, publish };
inline constexpr unsigned hook_kinds = 3;
const char* hook_name(hook_kind k) noexcept;

/// One question to the backend. Empty strings are left out of the JSON.
struct hook_call {
  hook_kind kind = hook_kind::connect;
  std::string user;        // the token's sub; empty: anonymous (sent as null)
  std::string client;      // the connection's id
  std::string transport;   // "ws", "sse" or "poll" ("http" for POST /publish)
  std::string channel;     // subscribe, publish
  std::string channels;    // connect of SSE / long polling: the request's channels, a JSON array
  std::string event;       // publish: the event name, if any
  std::string data_json;   // publish: the data as published (valid JSON)
  bool ephemeral = false;  // publish
};

/// {"hook":"publish","user":"alice","client":"…","transport":"ws","channel":"…","data":…}
std::string hook_request_json(const hook_call& c);

/// The backend's answer: allow, or refuse with a code (4000-4999, default 4403) and a
/// message; for a publish, `data` (any JSON, compacted) replaces the message's data.
struct hook_decision {
  bool allow = false;
  int code = 4403;
  std::string message;
  std::optional<std::string> data;
};

/// Parses a hook reply body; a string saying what is wrong when it is not
/// {"allow":bool[,"code":4000-4999][,"message":string][,"data":json]}.
std::variant<hook_decision, std::string> parse_hook_reply(std::string_view body);

/// `publish_body` (a valid POST /publish body, a JSON object) with its "data" member
/// replaced by `data_json` (valid JSON).
std::string replace_publish_data(std::string_view publish_body, std::string_view data_json);

}  // namespace herald::protocol
