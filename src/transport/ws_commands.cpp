// The WebSocket session's commands (docs/protocol.md, "WebSocket"): subscribe,
// unsubscribe, publish (and its ephemeral form), history, presence, stop; subscribe and
// publish ask the backend first when a hook is configured (transport/hooks.hpp). The
// rest of the session is in ws_session.cpp.
#include <algorithm>

#include "core/history_read.hpp"
#include "core/presence.hpp"
#include "protocol/cursor.hpp"
#include "protocol/replies.hpp"
#include "protocol/user_command.hpp"
#include "transport/client_events.hpp"
#include "transport/hooks.hpp"
#include "transport/ws_session.hpp"
#include "util/clock.hpp"

namespace herald::transport {

void ws_session::handle(protocol::ws_command cmd) {
  using protocol::ws_method;
  switch (cmd.method) {
    case ws_method::ping:
      return reply(cmd.id, "{}");
    case ws_method::subscribe:
      return subscribe_command(cmd);
    case ws_method::unsubscribe: {
      if (!subscribed(cmd.channel))
        return reply_error(cmd.id, {400, "not_subscribed", "not subscribed to " + cmd.channel});
      auto it = std::find_if(pending_subscribes_.begin(), pending_subscribes_.end(),
                             [&](auto& p) { return p.first == cmd.channel; });
      if (it != pending_subscribes_.end()) {
        reply_error(it->second, {409, "unsubscribed", "unsubscribed before the subscription completed"});
        drop_pending(it);
      }
      unsubscribe(cmd.channel);
      raw_.set(cmd.channel, false);
      return reply(cmd.id, "{}");
    }
    case ws_method::publish:
      return publish_command(cmd);
    case ws_method::history:
      return history_command(cmd);
    case ws_method::stop:
      return stop_command(cmd);
    case ws_method::presence:
      return presence_command(cmd);
  }
}

void ws_session::subscribe_command(protocol::ws_command& cmd) {
  if (subscribed(cmd.channel))
    return reply_error(cmd.id, {400, "already_subscribed", "already subscribed to " + cmd.channel});
  if (channel_count() >= st_.opts.max_channels_per_connection) {
    limit_refused(metrics::counter::limit_channels_per_connection, "channels_per_connection");
    return reply_error(
        cmd.id, {429, "too_many_channels",
                 "at most " + std::to_string(st_.opts.max_channels_per_connection) + " channels per connection"});
  }
  if (auto err = st_.auth.may_subscribe(who_, cmd.channel)) return reply_error(cmd.id, *err);
  std::vector<protocol::cursor_entry> since;
  const bool earliest = cmd.since == "earliest";
  if (!cmd.since.empty() && !earliest) {
    auto entries = protocol::decode_cursor(cmd.since);
    if (!entries) return reply_error(cmd.id, {400, "bad_cursor", "since is not a valid cursor"});
    since = std::move(*entries);
  }
  if (!st_.backend_hooks || !st_.backend_hooks->enabled(protocol::hook_kind::subscribe))
    return subscribe_now(cmd, std::move(since), earliest);
  ++commands_in_flight_;
  auto call = hook_call_of(protocol::hook_kind::subscribe, cmd);  // before cmd moves into the callback
  st_.backend_hooks->ask(
      tc_.index(), call, [s = self(), cmd = std::move(cmd), since = std::move(since), earliest](hook_verdict v) {
        s->command_done();
        if (s->state_ != state::open) return;
        if (v.refusal) return s->reply_error(cmd.id, *v.refusal);
        // Asked twice meanwhile: the first answer won.
        if (s->subscribed(cmd.channel))
          return s->reply_error(cmd.id, {400, "already_subscribed", "already subscribed to " + cmd.channel});
        s->subscribe_now(cmd, since, earliest);
      });
}

void ws_session::subscribe_now(const protocol::ws_command& cmd, std::vector<protocol::cursor_entry> since,
                               bool earliest) {
  pending_subscribes_.emplace_back(cmd.channel, cmd.id);
  raw_.set(cmd.channel, cmd.raw);
  replaying();
  std::string channels[] = {cmd.channel};
  subscribe(channels, since, st_.opts.replay_limit, earliest);
}

protocol::hook_call ws_session::hook_call_of(protocol::hook_kind k, const protocol::ws_command& cmd) {
  if (client_id().empty() && st_.core.presence) set_client_id(st_.core.presence->next_client_id());
  protocol::hook_call c;
  c.kind = k;
  if (who_) c.user = who_->user;
  c.client = std::string(client_id());
  c.transport = "ws";
  c.channel = cmd.channel;
  if (k == protocol::hook_kind::publish) {
    c.event = cmd.event;
    c.data_json = cmd.data_json;
    c.ephemeral = cmd.ephemeral;
  }
  return c;
}

void ws_session::history_command(protocol::ws_command& cmd) {
  if (auto err = st_.auth.may_read(who_, cmd.channel)) return reply_error(cmd.id, *err);
  core::history_query q{cmd.channel, std::nullopt, cmd.limit};
  if (cmd.since == "earliest") {
    q.earliest = true;
  } else if (!cmd.since.empty()) {
    auto pos = core::cursor_position(cmd.since, cmd.channel);
    if (auto* err = std::get_if<util::api_error>(&pos)) return reply_error(cmd.id, *err);
    q.since = std::get<core::position>(pos);
  }
  auto since = q.since;
  ++commands_in_flight_;
  st_.core.history(thread(), std::move(q),
                   [s = self(), id = cmd.id, channel = cmd.channel, since](core::broker::history_result r) {
                     s->command_done();
                     if (auto* err = std::get_if<util::api_error>(&r)) return s->reply_error(id, *err);
                     s->reply(id, core::history_json(channel, std::get<core::history_reply>(r), since));
                   });
}

void ws_session::publish_command(protocol::ws_command& cmd) {
  if (auto err = st_.auth.may_publish(who_, cmd.channel)) {
    metrics::add(metrics::counter::publish_errors);
    return reply_error(cmd.id, *err);
  }
  if (!st_.backend_hooks || !st_.backend_hooks->enabled(protocol::hook_kind::publish)) return publish_now(cmd);
  ++commands_in_flight_;
  auto call = hook_call_of(protocol::hook_kind::publish, cmd);  // before cmd moves into the callback
  st_.backend_hooks->ask(tc_.index(), call, [s = self(), cmd = std::move(cmd)](hook_verdict v) mutable {
    s->command_done();
    if (s->state_ != state::open) return;
    if (v.refusal) {
      metrics::add(metrics::counter::publish_errors);
      return s->reply_error(cmd.id, *v.refusal);
    }
    if (v.data) cmd.data_json = std::move(*v.data);
    s->publish_now(cmd);
  });
}

void ws_session::publish_now(protocol::ws_command& cmd) {
  ++commands_in_flight_;
  st_.core.publish(thread(), {cmd.channel, std::move(cmd.event), std::move(cmd.data_json), cmd.expected_offset},
                   cmd.ephemeral, [s = self(), id = cmd.id](core::broker::publish_result r) {
                     s->command_done();
                     if (auto* err = std::get_if<util::api_error>(&r)) return s->reply_error(id, *err);
                     auto& m = std::get<protocol::message_ptr>(r);
                     s->reply(id, m->is_signal() ? protocol::ephemeral_result()
                                                 : protocol::publish_result(m->offset(), m->cursor()));
                   });
}

void ws_session::stop_command(protocol::ws_command& cmd) {
  // A client stops a stream it may publish on.
  if (auto err = st_.auth.may_publish(who_, cmd.channel)) return reply_error(cmd.id, *err);
  ++commands_in_flight_;
  st_.api.stop_stream(thread(), cmd.channel, cmd.reason, [s = self(), id = cmd.id](api::handlers::stop_result r) {
    s->st_.core.hubs.run_on(s->thread(), [s, id, r = std::move(r)] {
      s->command_done();
      if (auto* err = std::get_if<util::api_error>(&r)) return s->reply_error(id, *err);
      s->reply(id, std::get<std::string>(r));
    });
  });
}

void ws_session::presence_command(protocol::ws_command& cmd) {
  // Who may subscribe to a channel may see who is there, where the namespace keeps it.
  if (auto err = st_.auth.may_read(who_, cmd.channel)) return reply_error(cmd.id, *err);
  if (!st_.core.presence || !st_.core.namespaces.for_channel(cmd.channel).presence)
    return reply_error(cmd.id, core::presence_disabled(cmd.channel));
  const auto limit = std::min<std::size_t>(cmd.limit, core::presence_limit_max);
  ++commands_in_flight_;
  st_.core.presence->shared_snapshot(
      cmd.channel, limit, [s = self(), id = cmd.id](core::presence_mirror::snapshot_result r) {
        s->st_.core.hubs.run_on(s->thread(), [s, id, r = std::move(r)] {
          s->command_done();
          if (auto* err = std::get_if<util::api_error>(&r)) return s->reply_error(id, *err);
          s->reply(id, core::presence_registry::to_json(std::get<core::presence_snapshot>(r)));
        });
      });
}

bool ws_session::apply_user_command(const protocol::user_command& c) {
  using op = protocol::user_command::op;
  if (state_ != state::open) return false;
  switch (c.what) {
    case op::disconnect:
      close_with(c.code,
                 !c.reason.empty() ? std::string_view(c.reason)
                 : c.reconnect()   ? std::string_view("disconnected by the server: reconnect")
                                   : std::string_view("disconnected by the server"),
                 false);
      return true;
    case op::unsubscribe: {
      if (!subscribed(c.channel)) return false;
      auto it = std::find_if(pending_subscribes_.begin(), pending_subscribes_.end(),
                             [&](auto& p) { return p.first == c.channel; });
      if (it != pending_subscribes_.end()) {
        reply_error(it->second, {409, "unsubscribed", "unsubscribed by the server before the subscription completed"});
        drop_pending(it);
      }
      unsubscribe(c.channel);
      raw_.set(c.channel, false);
      send_text(protocol::ws_unsubscribed_push(c.channel));
      return true;
    }
    case op::subscribe: {
      // The backend's word is the grant. The result comes as a reply with "id":null.
      if (subscribed(c.channel) || channel_count() >= st_.opts.max_channels_per_connection) return false;
      protocol::ws_command cmd;
      cmd.id = "null";
      cmd.channel = c.channel;
      subscribe_now(cmd, {}, false);
      return true;
    }
  }
  return false;
}

}  // namespace herald::transport
