// Streams through the server API: POST /api/stream/end (docs/streams.md). The ingest
// (POST /api/stream) reads its body as it arrives, so it lives in the transport
// (transport/stream_ingest.hpp); stops reach it through the ingest registry.
#include "api/api_handlers.hpp"
#include "metrics/metrics.hpp"
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
  ctx_.brokers.publish(std::move(p), [done = std::move(done), state = f.state](core::broker::publish_result r) {
    if (auto* err = std::get_if<api_error>(&r)) {
      metrics::add(metrics::counter::publish_errors);
      return done(error_response(*err));
    }
    metrics::add(metrics::counter::publishes);
    auto& m = std::get<protocol::message_ptr>(r);
    response resp;
    resp.body = protocol::stream_result(m->channel(), m->offset(), m->cursor(), state);
    done(std::move(resp));
  });
}

}  // namespace herald::api
