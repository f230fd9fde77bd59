#pragma once
// The chat and resume scenarios (herald's own protocol, --procs helpers in phases): they
// run from the state run() set up once every subscriber or client is connected.
#include <boost/program_options/variables_map.hpp>
#include <cstdio>
#include <memory>
#include <vector>

#include "clients.hpp"
#include "driver.hpp"
#include "helpers.hpp"
#include "stats.hpp"

namespace herald::bench {

struct phased_run {
  const boost::program_options::variables_map& vm;
  net::io_context& ioc;
  delivery_totals& totals;
  std::vector<helper>& helpers;
  std::vector<std::shared_ptr<subscriber>>& subs;
  std::vector<std::shared_ptr<chat_client>>& chats;
  json_record& rec;
  dialect dia;
  tcp::endpoint publish_to;
  std::size_t n, messages, size, window, missed;
  double rate_asked;
  bool all_connected;
  int pid;
  proc_sample server0, self0;
  double& helpers_cpu;

  /// The latency columns of the table row and the record, `prefix` before them.
  void latency_cols(const char* prefix) {
    std::printf("%sp50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us", prefix, totals.latency.percentile_us(0.5),
                totals.latency.percentile_us(0.99), totals.latency.percentile_us(0.999), totals.latency.max_us());
    rec.num("p50_us", totals.latency.percentile_us(0.5));
    rec.num("p99_us", totals.latency.percentile_us(0.99));
    rec.num("p999_us", totals.latency.percentile_us(0.999));
    rec.num("max_us", totals.latency.max_us());
  }
};

/// --scenario chat: every client publishes its share over its own WebSocket into one
/// room; everyone receives everything.
int run_chat(phased_run& run);
/// --scenario resume: everyone leaves at once, messages are published, everyone comes
/// back at once from its cursor.
int run_resume(phased_run& run);

}  // namespace herald::bench
