// Streams through the server API: POST /api/stream/end (docs/streams.md). The ingest
// (POST /api/stream) reads its body as it arrives, so it lives in the transport
// (transport/stream_ingest.hpp); stops reach it through the ingest registry.
#include "api/api_handlers.hpp"
#include "metrics/metrics.hpp"
#include "protocol/json_text.hpp"
#include "protocol/replies.hpp"
#include "protocol/stream_fields.hpp"

namespace herald::api {

using util::api_error;

void handlers::stream_end(const request& req, std::function<void(response)> done) {
  auto parsed = protocol::parse_stream_end(req.body);
  if (auto* err = std::get_if<api_error>(&parsed)) {
    metrics::add(metrics::counter::publish_errors);
    return done(error_response(*err));
  }
  auto& f = std::get<protocol::stream_end_fields>(parsed);
  core::publish_request p{f.channel, std::string(core::end_event), protocol::end_data_json(f.state, f.reason),
                          f.expected_offset};
  ctx_.publish(req.thread, std::move(p), false,
               [done = std::move(done), state = f.state](core::broker::publish_result r) {
                 if (auto* err = std::get_if<api_error>(&r)) return done(error_response(*err));
                 auto& m = std::get<protocol::message_ptr>(r);
                 response resp;
                 resp.body = protocol::stream_result(m->channel(), m->offset(), m->cursor(), state);
                 done(std::move(resp));
               });
}

}  // namespace herald::api

namespace herald::api {

void handlers::stream_stop(const request& req, bool client, std::function<void(response)> done) {
  auto parsed = protocol::parse_stream_stop(req.body);
  if (auto* err = std::get_if<api_error>(&parsed)) return done(error_response(*err));
  auto& f = std::get<protocol::stream_stop_fields>(parsed);
  // A client stops a stream it may publish on.
  if (client)
    if (auto err = auth_.may_publish(req.who, f.channel)) return done(error_response(*err));
  stop_stream(req.thread, std::move(f.channel), std::move(f.reason), [done = std::move(done)](stop_result r) {
    if (auto* err = std::get_if<api_error>(&r)) return done(error_response(*err));
    response resp;
    resp.body = std::move(std::get<std::string>(r));
    done(std::move(resp));
  });
}

void handlers::stop_stream(unsigned t, std::string channel, std::string reason, std::function<void(stop_result)> done) {
  auto result = [channel](core::broker::publish_result r) -> stop_result {
    if (auto* err = std::get_if<api_error>(&r)) return *err;
    auto& m = std::get<protocol::message_ptr>(r);
    return protocol::stream_result(channel, m->offset(), m->cursor(), protocol::state_aborted);
  };
  if (ctx_.streams) {
    // The ingest on this node, if any, ends aborted and answers its producer first.
    auto shared = std::make_shared<std::function<void(stop_result)>>(done);
    const bool live = ctx_.streams->stop(
        channel, reason, [this, t, channel, reason, shared, result](core::broker::publish_result r) mutable {
          auto* err = std::get_if<api_error>(&r);
          if (err && err->code == "not_streaming") return publish_abort(t, channel, reason, std::move(*shared));
          (*shared)(result(std::move(r)));
        });
    if (live) return;
  }
  publish_abort(t, std::move(channel), std::move(reason), std::move(done));
}

void handlers::publish_abort(unsigned t, std::string channel, std::string reason,
                             std::function<void(stop_result)> done) {
  // No live ingest on this node. A channel with no message is no stream (404), one that
  // ended cannot be stopped (409); else another node may hold the ingest (Redis), and
  // without one (a piecewise producer) the end is published here: its producer's next
  // append gets 409 stream_ended.
  core::history_query q{channel, std::nullopt, 0};
  ctx_.replay(
      t, std::move(q),
      [this, t, channel, reason = std::move(reason), done = std::move(done)](core::broker::history_result h) mutable {
        if (auto* err = std::get_if<api_error>(&h)) return done(*err);
        auto& reply = std::get<core::history_reply>(h);
        if (reply.epoch == 0) return done(api_error{404, "not_found", "no stream on channel " + channel});
        if (reply.ended)
          return done(api_error{409, "stream_ended", "channel " + channel + " has ended: its end is its last message"});
        ctx_.brokers.stop_remote(
            channel, reason, [this, t, channel, reason, done = std::move(done)](bool ended) mutable {
              if (ended) return answer_with_end(t, channel, std::move(done));
              core::publish_request p{channel, std::string(core::end_event),
                                      protocol::end_data_json(protocol::state_aborted, reason)};
              ctx_.publish(t, std::move(p), false, [channel, done = std::move(done)](core::broker::publish_result r) {
                if (auto* err = std::get_if<api_error>(&r)) return done(*err);
                auto& m = std::get<protocol::message_ptr>(r);
                done(protocol::stream_result(channel, m->offset(), m->cursor(), protocol::state_aborted));
              });
            });
      });
}

void handlers::answer_with_end(unsigned t, std::string channel, std::function<void(stop_result)> done) {
  // The ingest on another node published the end: answer with it (its state is the one
  // it ended in, "completed" if it finished before the stop reached it).
  core::history_query q{channel, std::nullopt, 1};
  ctx_.replay(t, std::move(q), [channel, done = std::move(done)](core::broker::history_result h) {
    if (auto* err = std::get_if<api_error>(&h)) return done(*err);
    auto& reply = std::get<core::history_reply>(h);
    if (reply.messages.empty() || reply.messages.back()->event() != core::end_event)
      return done(api_error{409, "stream_ended", "channel " + channel + " has ended"});
    const auto& m = reply.messages.back();
    std::string state(protocol::state_aborted);
    if (auto members = protocol::json_members(m->data_json()))
      for (const auto& mem : *members)
        if (mem.key == "state")
          if (auto v = protocol::json_string(mem.value)) state = std::move(*v);
    done(protocol::stream_result(channel, m->offset(), m->cursor(), state));
  });
}

}  // namespace herald::api
