// The route of a request, decided once for HTTP/1.1 and HTTP/2 (http_exchange.hpp). The
// backend hooks' decision points are in http_hooks.cpp.
#include <algorithm>

#include "transport/client_events.hpp"
#include "transport/hooks.hpp"
#include "transport/http_exchange.hpp"
#include "transport/longpoll_request.hpp"
#include "transport/origin_policy.hpp"

namespace herald::transport {

namespace http = boost::beast::http;

namespace {

bool is_client_path(std::string_view path) {
  return path == "/sse" || path == "/poll" || path == "/ws" || path == "/publish" || path == "/ticket" ||
         path == "/stop";
}

}  // namespace

void http_exchange::reset_request() noexcept {
  hooked_body_.reset();
  client_id_.clear();
  head_.reset();
  cors_.clear();
  ws_accept_.reset();
}

void http_exchange::route() {
  metrics::add(metrics::counter::http_requests);
  auto& req = request();
  keep_alive_ = req.keep_alive();
  head_only_ = req.method() == http::verb::head;
  const std::string_view path = head_->target.path;
  if (!is_client_path(path)) return call_api(path, head_->target.params, nullptr);

  // Browser origins. /ws checks its Origin in the handshake (no CORS there).
  if (path != "/ws") {
    auto v = check_origin(req[http::field::origin], head_->host, st_.opts);
    const bool preflight = req.method() == http::verb::options;
    if (!v.allowed || (preflight && v.cross_origin && v.headers.empty())) {
      metrics::add(metrics::counter::origin_refused);
      return send_error(
          {403, "origin_not_allowed", "origin not allowed: " + std::string(req[http::field::origin].substr(0, 200))});
    }
    if (preflight) {
      api::response r;
      r.status = 204;
      r.headers = preflight_headers(v);
      return send_api_response(std::move(r));
    }
    cors_ = std::move(v.headers);
  }

  if (path == "/sse" || path == "/poll") {
    if (req.method() != http::verb::get) {
      auto r = api::error_response({405, "method_not_allowed", "use GET for " + std::string(path)});
      r.headers.emplace_back("Allow", "GET");
      return send_api_response(std::move(r));
    }
  } else if (path == "/ws") {
    auto hs = ws_handshake(req, st_.opts);
    if (auto* refusal = std::get_if<ws_refusal>(&hs)) {
      if (refusal->error.code == "origin_not_allowed") metrics::add(metrics::counter::origin_refused);
      auto r = api::error_response(refusal->error);
      r.headers = std::move(refusal->headers);
      return send_api_response(std::move(r));
    }
    ws_accept_ = std::move(std::get<ws_accept>(hs));
  } else if (path == "/ticket") {
    return call_api(path, head_->target.params, nullptr);  // authenticated by its handler
  }

  auth::credentials creds;
  std::string ticket;  // params decode into owned strings
  if (auto it = req.find(http::field::authorization); it != req.end()) creds.authorization = it->value();
  if (auto it = head_->target.params.find("ticket"); it != head_->target.params.end()) ticket = (*it).value;
  creds.ticket = ticket;
  if (creds.authorization.empty() && creds.ticket.empty()) return dispatch(auth::identity{});  // anonymous
  const auto t = tc_.index();
  // Views into the request (alive: nothing is read until this request is answered).
  st_.auth.authenticate(creds, [self = self(), t](auth::authorizer::auth_result r) {
    self->st_.core.hubs.run_on(t, [self, r = std::move(r)]() mutable { self->dispatch(std::move(r)); });
  });
}

void http_exchange::dispatch(auth::authorizer::auth_result result) {
  const std::string_view path = head_->target.path;
  const auto params = head_->target.params;
  auto* refusal = std::get_if<util::api_error>(&result);
  if (path == "/ws" && !refusal && st_.backend_hooks && st_.backend_hooks->enabled(protocol::hook_kind::connect))
    return ask_ws_connect_hook(std::get<auth::identity>(result));
  if (path == "/ws") return start_ws(refusal ? nullptr : &std::get<auth::identity>(result), refusal);
  if (refusal) return send_error(*refusal);
  auto& who = std::get<auth::identity>(result);
  if (path == "/publish" && st_.backend_hooks && st_.backend_hooks->enabled(protocol::hook_kind::publish))
    return ask_publish_hook(params, std::move(who));
  if (path == "/publish" || path == "/stop") return call_api(path, params, std::move(who));
  start_stream(path, params, who);
}

void http_exchange::start_stream(std::string_view path, boost::urls::params_view params, const auth::identity& who) {
  auto& req = request();
  std::string_view last_id;
  if (auto it = req.find("Last-Event-ID"); it != req.end()) last_id = it->value();
  auto parsed = parse_subscribe_request(params, last_id, st_.opts);
  if (auto* err = std::get_if<util::api_error>(&parsed)) {
    if (err->code == "too_many_channels")
      limit_refused(metrics::counter::limit_channels_per_connection, "channels_per_connection");
    return send_error(*err);
  }
  auto& sub = std::get<subscribe_request>(parsed);
  for (const auto& ch : sub.channels)
    if (auto err = st_.auth.may_subscribe(who, ch)) return send_error(*err);
  if (stream_hooked()) return ask_stream_hooks(path, std::move(sub), who);
  open_stream(path, std::move(sub), who);
}

void http_exchange::open_stream(std::string_view path, subscribe_request sub, const auth::identity& who) {
  if (path == "/sse") return open_sse(std::move(sub), who);
  open_poll(std::move(sub), who);
}

void http_exchange::open_poll(subscribe_request sub, const auth::identity& who) {
  // The peer may have reset the connection already: that is its end, not an exception.
  const auto peer = peer_address();
  if (!peer) return;
  ip_slot poll_slot;
  if (!st_.polls_per_ip.acquire(*peer, poll_slot)) {
    limit_refused(metrics::counter::limit_polls_per_ip, "polls_per_ip", {{"addr", peer->to_string()}});
    return send_error({429, "too_many_polls",
                       "at most " + std::to_string(st_.polls_per_ip.limit()) + " long polls held per address"});
  }
  auto p = std::make_shared<longpoll_request>(self(), who, std::move(poll_slot));
  if (!client_id_.empty()) p->set_client_id(std::move(client_id_));
  p->start(std::move(sub));
}

void http_exchange::call_api(std::string_view path, boost::urls::params_view params, auth::identity who) {
  auto& req = request();
  api::request areq;
  areq.method = req.method_string();
  areq.path = path;
  areq.params = params;
  if (auto it = req.find(http::field::authorization); it != req.end()) areq.authorization = it->value();
  areq.body = hooked_body_ ? std::string_view(*hooked_body_) : std::string_view(req.body());
  areq.who = std::move(who);
  const auto t = tc_.index();
  areq.thread = t;
  st_.api.handle(areq, [self = self(), t](api::response r) {
    self->st_.core.hubs.run_on(t, [self, r = std::move(r)]() mutable { self->send_api_response(std::move(r)); });
  });
}

void http_exchange::send_api_response(api::response r) {
  if (r.status >= 500)
    metrics::add(metrics::counter::http_server_errors);
  else if (r.status >= 400)
    metrics::add(metrics::counter::http_client_errors);
  if (!cors_.empty()) r.headers.insert(r.headers.end(), cors_.begin(), cors_.end());
  // Every 401 names its scheme (RFC 9110 11.6.1).
  if (r.status == 401 &&
      std::none_of(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.first == "WWW-Authenticate"; }))
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
  // 204 (preflights) carries neither a body nor its headers (RFC 9110 8.6).
  const bool no_content = r.status == 204;
  response_head(r.status, no_content ? "" : r.content_type, no_content ? -1 : static_cast<long long>(r.body.size()),
                r.headers);
  if (!head_only_) out_.push_copy(r.body);
  send();
}

void http_exchange::send_error(const util::api_error& e, bool close_after) {
  if (close_after) keep_alive_ = false;
  send_api_response(api::error_response(e));
}

}  // namespace herald::transport
