#include "api/api_handlers.hpp"

#include <atomic>
#include <memory>
#include <unordered_set>

#include <boost/json.hpp>

#include "api/demo_page.hpp"
#include "core/history_read.hpp"
#include "metrics/metrics.hpp"
#include "protocol/channel_name.hpp"
#include "protocol/cursor.hpp"
#include "protocol/json_fields.hpp"
#include "protocol/json_text.hpp"
#include "protocol/replies.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/parse_decimal.hpp"

namespace herald::api {

using util::api_error;
using util::bad_request;

response error_response(const api_error& e) {
  response r;
  r.status = e.status;
  r.body = protocol::error_json(e);
  return r;
}

namespace {

response json_response(std::string body) {
  response r;
  r.body = std::move(body);
  return r;
}

}  // namespace

handlers::handlers(core::context& ctx, const auth::authorizer& auth, options opts)
    : ctx_(ctx), auth_(auth), opts_(std::move(opts)), api_key_(opts_.api_key) {
  if (!opts_.web_root.empty()) static_ = std::make_unique<static_files>(opts_.web_root);
}

api_error* handlers::check_api_key(const request& req, api_error& storage) const {
  if (opts_.api_key.empty()) return nullptr;
  constexpr std::string_view bearer = "Bearer ";
  if (req.authorization.empty()) {
    storage = {401, "unauthorized", "this endpoint requires Authorization: Bearer <api key>"};
    return &storage;
  }
  if (!req.authorization.starts_with(bearer) || !api_key_.matches(req.authorization.substr(bearer.size()))) {
    storage = {403, "forbidden", "the API key is not valid"};
    return &storage;
  }
  return nullptr;
}

std::optional<api_error> handlers::check_key(std::string_view authorization) const {
  request r;
  r.authorization = authorization;
  api_error storage;
  if (auto* err = check_api_key(r, storage)) return *err;
  return std::nullopt;
}

void handlers::handle(const request& req, std::function<void(response)> done) {
  auto method_not_allowed = [&](std::string_view allow) {
    auto r = error_response({405, "method_not_allowed", "use " + std::string(allow) + " for " + std::string(req.path)});
    r.headers.emplace_back("Allow", std::string(allow));
    done(std::move(r));
  };
  const bool is_get = req.method == "GET" || req.method == "HEAD";
  const bool is_post = req.method == "POST";

  if (req.path.starts_with("/api/")) {
    api_error storage;
    if (auto* err = check_api_key(req, storage)) {
      auto r = error_response(*err);
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
      return done(std::move(r));
    }
    if (req.path == "/api/publish")
      return is_post ? publish(req, false, false, std::move(done)) : method_not_allowed("POST");
    if (req.path == "/api/broadcast")
      return is_post ? publish(req, true, false, std::move(done)) : method_not_allowed("POST");
    if (req.path == "/api/stream/stop")
      return is_post ? stream_stop(req, false, std::move(done)) : method_not_allowed("POST");
    if (req.path == "/api/stream/end")
      return is_post ? stream_end(req, std::move(done)) : method_not_allowed("POST");
    if (req.path == "/api/history") return is_get ? history_async(req, std::move(done)) : method_not_allowed("GET");
    if (req.path == "/api/channels") return is_get ? channels(std::move(done)) : method_not_allowed("GET");
    if (req.path == "/api/presence") return is_get ? presence(req, std::move(done)) : method_not_allowed("GET");
    using op = protocol::user_command::op;
    if (req.path == "/api/disconnect")
      return is_post ? user_command(req, op::disconnect, std::move(done)) : method_not_allowed("POST");
    if (req.path == "/api/subscribe")
      return is_post ? user_command(req, op::subscribe, std::move(done)) : method_not_allowed("POST");
    if (req.path == "/api/unsubscribe")
      return is_post ? user_command(req, op::unsubscribe, std::move(done)) : method_not_allowed("POST");
  } else if (req.path == "/publish") {
    return is_post ? publish(req, false, true, std::move(done)) : method_not_allowed("POST");
  } else if (req.path == "/stop") {
    return is_post ? stream_stop(req, true, std::move(done)) : method_not_allowed("POST");
  } else if (req.path == "/ticket") {
    return is_post ? ticket(req, std::move(done)) : method_not_allowed("POST");
  } else if (req.path == "/metrics") {
    return is_get ? done(metrics()) : method_not_allowed("GET");
  } else if (req.path == "/healthz") {
    return is_get ? done(json_response(R"({"status":"ok"})")) : method_not_allowed("GET");
  } else if (req.path == "/readyz") {
    if (!is_get) return method_not_allowed("GET");
    if (ctx_.brokers.ready()) return done(json_response(R"({"status":"ready"})"));
    return done(error_response({503, "unavailable", "the broker is not reachable"}));
  } else if (static_) {
    if (const auto* f = static_->find(req.path)) {
      if (!is_get) return method_not_allowed("GET");
      response r;
      r.content_type = f->content_type;
      r.body = f->body;
      r.headers.emplace_back("Cache-Control", "no-cache");
      return done(std::move(r));
    }
  } else if (req.path == "/") {
    if (!is_get) return method_not_allowed("GET");
    response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(demo_page_html());
    return done(std::move(r));
  }
  done(error_response({404, "not_found", "no such endpoint: " + std::string(req.path)}));
}

void handlers::publish(const request& req, bool broadcast, bool client, std::function<void(response)> done) {
  auto parsed = protocol::parse_publish(req.body, broadcast, opts_.max_data_bytes, opts_.max_broadcast_channels);
  if (auto* err = std::get_if<api_error>(&parsed)) {
    metrics::add(metrics::counter::publish_errors);
    if (err->status == 413) {
      metrics::add(metrics::counter::limit_message_size);
      util::log::limit("message_size", {{"what", "message data"}});
    }
    return done(error_response(*err));
  }
  auto& fields = std::get<protocol::publish_fields>(parsed);
  if (client) {
    if (auto err = auth_.may_publish(req.who, fields.channels[0])) {
      metrics::add(metrics::counter::publish_errors);
      return done(error_response(*err));
    }
  }

  if (!broadcast) {
    ctx_.publish(req.thread, {fields.channels[0], fields.event, fields.data_json, fields.expected_offset},
                 fields.ephemeral, [done = std::move(done)](core::broker::publish_result r) {
                   if (auto* err = std::get_if<api_error>(&r)) return done(error_response(*err));
                   done(json_response(result_json(*std::get<protocol::message_ptr>(r))));
                 });
    return;
  }

  // Broadcast: one publish per channel; the reply lists each result in request order.
  // Every result comes back on this thread, so the state needs no lock.
  struct state {
    std::vector<std::string> results;
    std::size_t remaining;
    std::function<void(response)> done;
  };
  auto st = std::make_shared<state>();
  st->results.resize(fields.channels.size());
  st->remaining = fields.channels.size();
  st->done = std::move(done);
  for (std::size_t i = 0; i < fields.channels.size(); ++i) {
    const std::string channel = fields.channels[i];
    ctx_.publish(req.thread, {channel, fields.event, fields.data_json}, fields.ephemeral,
                 [st, i, channel](core::broker::publish_result r) {
                   // {"channel":..,} + the publish result or the error, merged into one object.
                   std::string item = "{\"channel\":" + protocol::json_quote(channel) + ",";
                   if (auto* err = std::get_if<api_error>(&r)) {
                     std::string e = protocol::error_json(*err);
                     item += e.substr(1);  // {"error":..} merged into the item
                   } else {
                     item += result_json(*std::get<protocol::message_ptr>(r)).substr(1);
                   }
                   st->results[i] = std::move(item);
                   if (--st->remaining) return;
                   std::string body = "{\"results\":[";
                   for (std::size_t k = 0; k < st->results.size(); ++k) {
                     if (k) body += ',';
                     body += st->results[k];
                   }
                   body += "]}";
                   st->done(json_response(std::move(body)));
                 });
  }
}

std::string handlers::result_json(const protocol::message& m) {
  return m.is_signal() ? protocol::ephemeral_result() : protocol::publish_result(m.offset(), m.cursor());
}

void handlers::ticket(const request& req, std::function<void(response)> done) {
  if (req.authorization.empty()) {
    auto r = error_response({401, "unauthorized", "POST /ticket needs Authorization: Bearer <token>"});
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
    return done(std::move(r));
  }
  auto who = auth_.verify_bearer(req.authorization);
  if (auto* err = std::get_if<api_error>(&who)) return done(error_response(*err));
  const auto ttl = auth_.ticket_ttl().count();
  auth_.issue_ticket(*std::get<auth::identity>(who), [done = std::move(done), ttl](auth::authorizer::ticket_result r) {
    if (auto* err = std::get_if<api_error>(&r)) return done(error_response(*err));
    response resp =
        json_response("{\"ticket\":\"" + std::get<std::string>(r) + "\",\"expires_in\":" + std::to_string(ttl) + "}");
    resp.headers.emplace_back("Cache-Control", "no-store");
    done(std::move(resp));
  });
}

void handlers::history_async(const request& req, std::function<void(response)> done) {
  auto get = [&](std::string_view key) -> std::optional<std::string> {
    auto it = req.params.find(key);
    if (it == req.params.end()) return std::nullopt;
    return std::string((*it).value);
  };
  auto channel = get("channel");
  if (!channel) return done(error_response(bad_request("bad_request", "missing parameter channel")));
  if (!protocol::valid_channel_name(*channel))
    return done(
        error_response(bad_request("invalid_channel", "invalid channel name (1-255 bytes of [A-Za-z0-9_.:@/-])")));

  core::history_query q;
  q.channel = *channel;
  q.limit = 100;
  if (auto limit = get("limit")) {
    auto n = util::parse_decimal(*limit, util::query_integer_max);  // as /poll's
    if (!n) return done(error_response(bad_request("bad_request", "limit must be a non-negative integer")));
    q.limit = ctx_.history_limit(*n);
  }
  if (auto since = get("since"); since && *since == "earliest") {
    q.earliest = true;
  } else if (since) {
    auto pos = core::cursor_position(*since, *channel);
    if (auto* err = std::get_if<api_error>(&pos)) return done(error_response(*err));
    q.since = std::get<core::position>(pos);
  }
  auto since = q.since;
  ctx_.history(req.thread, std::move(q),
               [done = std::move(done), since, channel = *channel](core::broker::history_result r) {
                 if (auto* err = std::get_if<api_error>(&r)) return done(error_response(*err));
                 done(json_response(core::history_json(channel, std::get<core::history_reply>(r), since)));
               });
}

void handlers::channels(std::function<void(response)> done) {
  ctx_.brokers.channels([this, done = std::move(done)](std::vector<core::channel_summary> list) {
    auto counts = ctx_.hubs.counts();
    std::unordered_map<std::string, core::subscriber_counts> by_name(counts.begin(), counts.end());
    // Channels with subscribers but no life in the broker yet (reads create none) are
    // listed too, at offset 0 and epoch 0.
    {
      std::unordered_set<std::string_view> known;
      for (const auto& c : list) known.insert(c.channel);
      std::vector<core::channel_summary> unborn;
      for (const auto& [name, _] : counts)
        if (!known.contains(name)) unborn.push_back({name, 0, 0, 0});
      list.insert(list.end(), std::make_move_iterator(unborn.begin()), std::make_move_iterator(unborn.end()));
    }
    std::string body = "{\"channels\":[";
    std::size_t n = 0;
    for (auto& c : list) {
      if (n == opts_.channels_list_max) break;
      core::subscriber_counts sc{};
      if (auto it = by_name.find(c.channel); it != by_name.end()) sc = it->second;
      if (n++) body += ',';
      body += "{\"channel\":\"" + c.channel + "\",\"offset\":" + std::to_string(c.top) +
              ",\"epoch\":" + std::to_string(c.epoch) + ",\"history\":" + std::to_string(c.history_size) +
              ",\"subscribers\":{\"sse\":" + std::to_string(sc[0]) + ",\"poll\":" + std::to_string(sc[1]) +
              ",\"ws\":" + std::to_string(sc[2]) + "}}";
    }
    body += "],\"truncated\":";
    body += list.size() > n ? "true}" : "false}";
    done(json_response(std::move(body)));
  });
}

response handlers::metrics() {
  response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics::render_prometheus();
  return r;
}

}  // namespace herald::api
