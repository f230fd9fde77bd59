#include "transport/hooks.hpp"

#include <chrono>

#include "metrics/metrics.hpp"
#include "protocol/ws_frame.hpp"
#include "util/log.hpp"

namespace herald::transport {

using protocol::hook_kind;

namespace {

const hook_endpoint& endpoint_of(const hook_options& o, hook_kind k) {
  return k == hook_kind::connect ? o.connect : k == hook_kind::subscribe ? o.subscribe : o.publish;
}

// herald_hook_requests_total{hook,result}: six results per hook, in metrics.hpp's order.
enum class result : unsigned { allow, refuse, timeout, unavailable, bad_reply, overloaded };

void count(hook_kind k, result r, std::chrono::steady_clock::time_point start) {
  const unsigned base = static_cast<unsigned>(metrics::counter::hook_connect_allow);
  metrics::add(static_cast<metrics::counter>(base + static_cast<unsigned>(k) * 6 + static_cast<unsigned>(r)));
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  metrics::add(static_cast<metrics::counter>(static_cast<unsigned>(metrics::counter::hook_connect_us) +
                                             static_cast<unsigned>(k)),
               static_cast<std::uint64_t>(us.count()));
}

hook_verdict failed(hook_kind k, int status, const char* code, const std::string& what) {
  hook_verdict v;
  v.refusal = util::api_error{status, code, std::string("the ") + protocol::hook_name(k) + " hook failed: " + what};
  v.close_code = protocol::ws_close::hook_failed;
  util::log::throttled(util::log::level::warn, "hook_failed", {"hook", protocol::hook_name(k)},
                       {{"error", code}, {"detail", what}});
  return v;
}

}  // namespace

hooks::hooks(const hook_options& opts, const std::vector<net::io_context*>& loops, std::size_t max_data_bytes)
    : max_data_bytes_(max_data_bytes) {
  for (unsigned k = 0; k < protocol::hook_kinds; ++k) enabled_[k] = endpoint_of(opts, hook_kind(k)).enabled();
  clients_.resize(loops.size());
  for (std::size_t t = 0; t < loops.size(); ++t)
    for (unsigned k = 0; k < protocol::hook_kinds; ++k)
      if (enabled_[k]) clients_[t][k] = std::make_unique<hook_client>(*loops[t], endpoint_of(opts, hook_kind(k)), opts);
}

hooks::~hooks() = default;

void hooks::ask(unsigned thread, const protocol::hook_call& c, std::function<void(hook_verdict)> done) {
  const auto k = c.kind;
  const auto start = std::chrono::steady_clock::now();
  clients_[thread][static_cast<unsigned>(k)]->call(
      protocol::hook_request_json(c), [this, k, start, done = std::move(done)](hook_response r) {
        switch (r.outcome) {
          case hook_outcome::timeout:
            count(k, result::timeout, start);
            return done(failed(k, 503, "hook_timeout", r.detail));
          case hook_outcome::unavailable:
            count(k, result::unavailable, start);
            return done(failed(k, 503, "hook_unavailable", r.detail));
          case hook_outcome::overloaded:
            count(k, result::overloaded, start);
            return done(failed(k, 503, "hook_overloaded", r.detail));
          case hook_outcome::bad_reply:
            count(k, result::bad_reply, start);
            return done(failed(k, 502, "hook_bad_reply", r.detail));
          case hook_outcome::ok:
            break;
        }
        auto parsed = protocol::parse_hook_reply(r.body);
        if (auto* why = std::get_if<std::string>(&parsed)) {
          count(k, result::bad_reply, start);
          return done(failed(k, 502, "hook_bad_reply", *why));
        }
        auto& d = std::get<protocol::hook_decision>(parsed);
        hook_verdict v;
        if (!d.allow) {
          count(k, result::refuse, start);
          v.refusal = util::api_error{403, "hook_refused", d.message.empty() ? "refused by the backend" : d.message,
                                      "\"hook_code\":" + std::to_string(d.code)};
          v.close_code = static_cast<std::uint16_t>(d.code);
          return done(std::move(v));
        }
        if (d.data && k == hook_kind::publish) {
          if (d.data->size() > max_data_bytes_) {
            count(k, result::bad_reply, start);
            return done(failed(k, 502, "hook_bad_reply",
                               "its data exceeds " + std::to_string(max_data_bytes_) + " bytes (max-message-size)"));
          }
          v.data = std::move(d.data);
        }
        count(k, result::allow, start);
        done(std::move(v));
      });
}

void hooks::ask_all(unsigned thread, std::vector<protocol::hook_call> calls, std::function<void(hook_verdict)> done) {
  struct gather {
    std::vector<hook_verdict> verdicts;
    std::size_t left;
    std::function<void(hook_verdict)> done;
  };
  if (calls.empty()) return done(hook_verdict{});
  auto g = std::make_shared<gather>(gather{std::vector<hook_verdict>(calls.size()), calls.size(), std::move(done)});
  for (std::size_t i = 0; i < calls.size(); ++i)
    ask(thread, calls[i], [g, i](hook_verdict v) {
      g->verdicts[i] = std::move(v);
      if (--g->left) return;
      for (auto& r : g->verdicts)
        if (r.refusal) return g->done(std::move(r));
      g->done(hook_verdict{});
    });
}

}  // namespace herald::transport
