#pragma once
// The HTTP server API and the small endpoints: /api/publish, /api/broadcast,
// /api/history, /api/channels, /api/presence, /publish (client publish), /ticket, /metrics, /healthz,
// /readyz and the demo page. Transport-neutral: the HTTP session parses the request and
// writes whatever response comes back.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/url/params_view.hpp>

#include "api/options.hpp"
#include "api/static_files.hpp"
#include "auth/authorizer.hpp"
#include "auth/secret_digest.hpp"
#include "core/context.hpp"
#include "protocol/user_command.hpp"

namespace herald::api {

struct request {
  std::string_view method;
  std::string_view path;            // still percent-encoded (routing compares it as sent)
  boost::urls::params_view params;  // decoded query parameters
  std::string_view authorization;   // the Authorization header, or empty
  std::string_view body;
  auth::identity who;  // the client's token grants (/publish), null: anonymous
  unsigned thread = 0;  // the calling event-loop thread: publishes and history reads answer on it
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

/// The JSON error response of the contract.
response error_response(const util::api_error& e);

class handlers {
 public:
  handlers(core::context& ctx, const auth::authorizer& auth, options opts);

  /// Handles `req`; `done` is called exactly once, inline or from a broker thread.
  /// The request's views must stay valid until then.
  void handle(const request& req, std::function<void(response)> done);

  /// Stops the stream of `channel` (POST /api/stream/stop, client /stop, WebSocket stop):
  /// a live ingest on this node ends `aborted` and its request is answered; else the end
  /// (aborted) is published for a piecewise producer. `done` gets the result JSON
  /// ({"channel","offset","cursor","state"}) or the error: 404 for a channel with no
  /// message, 409 stream_ended once it ended. Runs `done` on thread `t` (the caller's)
  /// or, for a live ingest of this node, on the ingest's.
  using stop_result = std::variant<std::string, util::api_error>;
  void stop_stream(unsigned t, std::string channel, std::string reason, std::function<void(stop_result)> done);

  /// The API-key check of /api/* for an `Authorization` header value: 401/403, or none.
  std::optional<util::api_error> check_key(std::string_view authorization) const;

 private:
  void publish(const request& req, bool broadcast, bool client, std::function<void(response)> done);
  /// {"offset":N,"cursor":..}, or {"ephemeral":true} for a signal.
  static std::string result_json(const protocol::message& m);
  void history_async(const request& req, std::function<void(response)> done);
  /// GET /api/presence (presence_api.cpp).
  void presence(const request& req, std::function<void(response)> done);
  /// POST /api/disconnect, /api/subscribe, /api/unsubscribe (users_api.cpp).
  void user_command(const request& req, protocol::user_command::op what, std::function<void(response)> done);
  void stream_end(const request& req, std::function<void(response)> done);  // stream_api.cpp
  void stream_stop(const request& req, bool client, std::function<void(response)> done);
  void publish_abort(unsigned t, std::string channel, std::string reason, std::function<void(stop_result)> done);
  void answer_with_end(unsigned t, std::string channel, std::function<void(stop_result)> done);
  void ticket(const request& req, std::function<void(response)> done);
  void channels(std::function<void(response)> done);
  response metrics();
  util::api_error* check_api_key(const request& req, util::api_error& storage) const;

  core::context& ctx_;
  const auth::authorizer& auth_;
  options opts_;
  auth::secret_digest api_key_;           // of opts_.api_key (checked only when that is set)
  std::unique_ptr<static_files> static_;  // --web-root, when set
};

}  // namespace herald::api
