#pragma once
// What the transports do when they refuse or cut a client, in one place: count it (the
// metric operators alert on) and log it, rate-limited (util/log.hpp), so the two never
// disagree. Never pass tokens, tickets or message data as fields.
#include <string_view>

#include "metrics/metrics.hpp"
#include "util/log.hpp"

namespace herald::transport {

/// A limit refused a client: `c` is its herald_limit_refusals_total counter, `limit` its
/// label (e.g. "polls_per_ip").
inline void limit_refused(metrics::counter c, std::string_view limit, util::log::fields f = {}) {
  metrics::add(c);
  util::log::limit(limit, f);
}

/// A connection was cut as a slow reader (`transport`: sse, ws, poll, http).
inline void slow_reader_cut(std::string_view transport, util::log::fields f = {}) {
  metrics::add(metrics::counter::slow_disconnects);
  util::log::slow_reader(transport, f);
}

}  // namespace herald::transport
