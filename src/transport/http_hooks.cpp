// The backend hooks' decision points of an HTTP request (transport/hooks.hpp): the
// connect and subscribe hooks of SSE and long polling, the connect hook of a WebSocket
// handshake, the publish hook of POST /publish. The rest of the route is in router.cpp.
#include "core/presence.hpp"
#include "metrics/metrics.hpp"
#include "protocol/json_fields.hpp"
#include "protocol/json_text.hpp"
#include "transport/hooks.hpp"
#include "transport/http_exchange.hpp"

namespace herald::transport {

using protocol::hook_call;
using protocol::hook_kind;

namespace {

hook_call call_of(hook_kind k, const auth::identity& who, const std::string& client, const char* transport) {
  hook_call c;
  c.kind = k;
  if (who) c.user = who->user;
  c.client = client;
  c.transport = transport;
  return c;
}

}  // namespace

std::string http_exchange::new_client_id() const {
  return st_.core.presence ? st_.core.presence->next_client_id() : std::string();
}

bool http_exchange::stream_hooked() const noexcept {
  return st_.backend_hooks &&
         (st_.backend_hooks->enabled(hook_kind::connect) || st_.backend_hooks->enabled(hook_kind::subscribe));
}

void http_exchange::ask_stream_hooks(std::string_view path, subscribe_request sub, auth::identity who) {
  // An SSE stream or a long poll is a connection and its subscriptions in one request:
  // the connect hook (with every channel) and one subscribe hook per channel, asked at
  // once; the first refusal, in that order, is the reply. A long poll asks at every poll.
  const char* transport = path == "/sse" ? "sse" : "poll";
  client_id_ = new_client_id();
  std::vector<hook_call> calls;
  if (st_.backend_hooks->enabled(hook_kind::connect)) {
    auto c = call_of(hook_kind::connect, who, client_id_, transport);
    c.channels = "[";
    for (const auto& ch : sub.channels) c.channels += (c.channels.size() > 1 ? "," : "") + protocol::json_quote(ch);
    c.channels += "]";
    calls.push_back(std::move(c));
  }
  if (st_.backend_hooks->enabled(hook_kind::subscribe))
    for (const auto& ch : sub.channels) {
      auto c = call_of(hook_kind::subscribe, who, client_id_, transport);
      c.channel = ch;
      calls.push_back(std::move(c));
    }
  st_.backend_hooks->ask_all(tc_.index(), std::move(calls),
                             [self = self(), path, sub = std::move(sub), who](hook_verdict v) mutable {
                               if (v.refusal) return self->send_error(*v.refusal);
                               self->open_stream(path, std::move(sub), who);
                             });
}

void http_exchange::ask_ws_connect_hook(auth::identity who) {
  client_id_ = new_client_id();
  st_.backend_hooks->ask(tc_.index(), call_of(hook_kind::connect, who, client_id_, "ws"),
                         [self = self(), who](hook_verdict v) {
                           // A refusal opens the WebSocket only to close it with the
                           // backend's code: browsers cannot read an HTTP refusal.
                           if (v.refusal) return self->start_ws(nullptr, &*v.refusal, v.close_code);
                           self->start_ws(&who, nullptr);
                         });
}

void http_exchange::ask_publish_hook(boost::urls::params_view params, auth::identity who) {
  const std::string_view body = request().body();
  auto parsed = protocol::parse_publish(body, false, st_.api_opts.max_data_bytes, st_.api_opts.max_broadcast_channels);
  auto* fields = std::get_if<protocol::publish_fields>(&parsed);
  // What the publish handler refuses anyway (bad body, not allowed) is not asked about.
  if (!fields || st_.auth.may_publish(who, fields->channels[0])) return call_api("/publish", params, std::move(who));
  auto c = call_of(hook_kind::publish, who, new_client_id(), "http");
  c.channel = fields->channels[0];
  c.event = fields->event;
  c.data_json = fields->data_json;
  c.ephemeral = fields->ephemeral;
  st_.backend_hooks->ask(tc_.index(), c, [self = self(), params, who](hook_verdict v) mutable {
    if (v.refusal) {
      metrics::add(metrics::counter::publish_errors);
      return self->send_error(*v.refusal);
    }
    if (v.data) self->hooked_body_ = protocol::replace_publish_data(self->request().body(), *v.data);
    self->call_api("/publish", params, std::move(who));
  });
}

}  // namespace herald::transport
