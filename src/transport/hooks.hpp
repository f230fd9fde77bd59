#pragma once
// The backend in the loop (docs/http-api.md, "Hooks"): on connect, subscribe and client
// publish, herald asks the backend over HTTP whether to go on, and for a publish which
// data to publish.
//
// The decision points (http_session for SSE, long polling, POST /publish and the
// WebSocket handshake; ws_session for its subscribe and publish commands) call ask() on
// the connection's own thread; the verdict comes back on that thread, never inline, at
// the latest --hook-timeout later. Each thread has its own hook_client per hook, so a
// call never crosses threads. Every answer is counted in
// herald_hook_requests_total{hook,result} and its time in
// herald_hook_duration_microseconds_total{hook}.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/hook_json.hpp"
#include "transport/hook_client.hpp"
#include "util/api_error.hpp"

namespace herald::transport {

/// What the backend decided, or why it could not be asked.
struct hook_verdict {
  /// Set when the call must not go on: the backend refused (403 hook_refused, with its
  /// code as "hook_code"), or the hook failed (503 hook_timeout, hook_unavailable,
  /// hook_overloaded; 502 hook_bad_reply).
  std::optional<util::api_error> refusal;
  /// The WebSocket close code for a refused connect: the backend's code, or 4004
  /// (hook failed: reconnect later).
  std::uint16_t close_code = 0;
  /// publish: the data the backend put instead (valid, compact JSON).
  std::optional<std::string> data;
};

class hooks {
 public:
  /// One client per thread (of `loops`, by index) and configured hook.
  /// `max_data_bytes`: replacement data larger than this is a bad reply.
  hooks(const hook_options& opts, const std::vector<net::io_context*>& loops, std::size_t max_data_bytes);
  ~hooks();

  bool enabled(protocol::hook_kind k) const noexcept { return enabled_[static_cast<unsigned>(k)]; }
  bool any() const noexcept { return enabled_[0] || enabled_[1] || enabled_[2]; }

  /// Asks the hook of `c.kind` from thread `thread` (the caller's); `done` runs there.
  void ask(unsigned thread, const protocol::hook_call& c, std::function<void(hook_verdict)> done);
  /// Asks every call of `calls` at once; `done` gets the first refusal in their order
  /// (or an allow) once all have answered.
  void ask_all(unsigned thread, std::vector<protocol::hook_call> calls, std::function<void(hook_verdict)> done);

 private:
  std::size_t max_data_bytes_;
  std::array<bool, protocol::hook_kinds> enabled_{};
  // [thread][kind], null where the hook is off.
  std::vector<std::array<std::unique_ptr<hook_client>, protocol::hook_kinds>> clients_;
};

}  // namespace herald::transport
