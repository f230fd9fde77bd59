#include "core/context.hpp"

#include <memory>

#include "metrics/metrics.hpp"
#include "util/clock.hpp"

namespace herald::core {

void context::publish(unsigned t, publish_request req, bool ephemeral, publish_done done) const {
  hub& h = hubs;
  if (!ephemeral) {
    brokers.publish(std::move(req), [&h, t, done = std::move(done)](broker::publish_result r) mutable {
      metrics::add(std::holds_alternative<util::api_error>(r) ? metrics::counter::publish_errors
                                                              : metrics::counter::publishes);
      h.run_on(t, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    });
    return;
  }
  auto m = std::make_shared<const protocol::message>(protocol::message_kind::ephemeral, std::move(req.channel),
                                                     util::unix_ms(), std::move(req.event), std::move(req.data_json));
  brokers.signal(m, [&h, t, m, done = std::move(done)](std::optional<util::api_error> err) mutable {
    metrics::add(err ? metrics::counter::publish_errors : metrics::counter::ephemeral_publishes);
    broker::publish_result r = err ? broker::publish_result(std::move(*err)) : broker::publish_result(m);
    h.run_on(t, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

void context::history(unsigned t, history_query q, history_done done) const {
  q.limit = history_limit(q.limit);
  replay(t, std::move(q), std::move(done));
}

void context::replay(unsigned t, history_query q, history_done done) const {
  if (max_reply_bytes && (q.max_bytes == 0 || q.max_bytes > max_reply_bytes)) q.max_bytes = max_reply_bytes;
  hub& h = hubs;
  brokers.history(std::move(q), [&h, t, done = std::move(done)](broker::history_result r) mutable {
    h.run_on(t, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

}  // namespace herald::core
