#include <boost/asio/executor_work_guard.hpp>
#include <cstdio>

#include "phased.hpp"

namespace herald::bench {

int run_chat(phased_run& run) {
  const auto& vm = run.vm;
  auto& ioc = run.ioc;
  auto& totals = run.totals;
  auto& helpers = run.helpers;
  auto& chats = run.chats;
  auto& rec = run.rec;
  const auto n = run.n;
  const auto messages = run.messages;
  const auto size = run.size;
  const auto window = run.window;
  const double rate_asked = run.rate_asked;
  const bool all_connected = run.all_connected;
  const auto pid = run.pid;
  const auto& server0 = run.server0;
  const auto& self0 = run.self0;
  auto& helpers_cpu = run.helpers_cpu;
  const auto latency_cols = [&](const char* prefix) { run.latency_cols(prefix); };
  // Every client publishes its share over its own WebSocket; everyone receives
  // everything. Loss is counted against what the server accepted (a refused publish,
  // e.g. rate_limited, is a publish error, never delivered).
  auto guard = net::make_work_guard(ioc);
  const auto before = gather(totals, helpers);  // bytes of the handshakes and subscribes, not counted
  const std::int64_t t0 = now_ns() + 20'000'000;  // the common start, helpers included
  for (auto& h : helpers) command(h, 'P', t0);
  for (auto& c : chats) c->start_publishing(t0);
  const std::uint64_t to_publish = n * messages;
  wait_all(ioc, totals, helpers,
           [&](const helper_report& r) {
             return r.published + r.publish_failed >= to_publish && r.delivered - r.duplicated >= n * r.published;
           },
           std::chrono::seconds(5));
  for (auto& h : helpers) collect_helper(h, totals, helpers_cpu);
  const double secs = std::max(0.0, static_cast<double>(totals.last_delivery_ns - t0) / 1e9);
  const auto server1 = pid ? sample_process(pid) : proc_sample{};
  const auto self1 = sample_process(0);
  const double delivered = double(totals.delivered);
  const std::uint64_t expected = n * totals.published;
  const std::uint64_t distinct = totals.delivered - totals.duplicated;
  const std::uint64_t lost = expected > distinct ? expected - distinct : 0;
  const double rate = secs > 0 ? delivered / secs : 0.0;
  const double per_msg_in = totals.delivered ? double(totals.bytes_in - before.bytes_in) / delivered : 0;
  const double per_msg_out = totals.delivered ? double(totals.bytes_out - before.bytes_out) / delivered : 0;
  const double cpu_us = totals.delivered ? (server1.cpu_seconds - server0.cpu_seconds) * 1e6 / delivered : 0.0;
  const double bench_cpu = secs > 0 ? 100.0 * (self1.cpu_seconds - self0.cpu_seconds + helpers_cpu) / secs : 0.0;
  // As in a fan-out, a reset is the server saying it skipped messages (history too short
  // for a reader that fell behind): what it skipped is in `lost`, but is not a failure.
  const bool ok = all_connected && (lost == 0 || totals.resets) && totals.duplicated == 0 &&
                  totals.reordered == 0 && totals.publish_failed == 0 && totals.published == to_publish;
  std::printf(" | %zu clients x %zu msgs x %zu B at %.0f/s | published %llu/%llu, publish errors %llu | delivered "
              "%llu/%llu, lost %llu, dup %llu, order %llu, resets %llu, errors %llu | %.0f msgs/s | ",
              n, messages, size, rate_asked, static_cast<unsigned long long>(totals.published),
              static_cast<unsigned long long>(to_publish), static_cast<unsigned long long>(totals.publish_failed),
              static_cast<unsigned long long>(totals.delivered), static_cast<unsigned long long>(expected),
              static_cast<unsigned long long>(lost), static_cast<unsigned long long>(totals.duplicated),
              static_cast<unsigned long long>(totals.reordered), static_cast<unsigned long long>(totals.resets),
              static_cast<unsigned long long>(totals.errors), rate);
  rec.num("messages", double(messages));
  rec.num("size", double(size));
  rec.num("rate", rate_asked);
  rec.num("window", double(window));
  rec.num("published", double(totals.published));
  rec.num("publish_failed", double(totals.publish_failed));
  rec.num("expected", double(expected));
  rec.num("delivered", delivered);
  rec.num("lost", double(lost));
  rec.num("duplicated", double(totals.duplicated));
  rec.num("reordered", double(totals.reordered));
  rec.num("resets", double(totals.resets));
  rec.num("errors_end", double(totals.errors));
  rec.num("seconds", secs);
  rec.num("msgs_per_s", rate);
  latency_cols("");
  std::printf(" | %.1f B in + %.1f B out per msg | server %.2f us CPU/msg, RSS %.1f MiB | bench CPU %.0f%% |\n",
              per_msg_in, per_msg_out, cpu_us, double(server1.rss_bytes) / 1048576.0, bench_cpu);
  rec.num("bytes_in_per_msg", per_msg_in);
  rec.num("bytes_out_per_msg", per_msg_out);
  rec.num("server_cpu_us_per_msg", cpu_us);
  rec.num("server_rss_bytes", double(server1.rss_bytes));
  rec.num("bench_cpu_pct", bench_cpu);
  rec.boolean("ok", ok);
  append_json(vm, rec);
  for (auto& c : chats) c->stop();
  return ok ? 0 : 1;
}

int run_resume(phased_run& run) {
  const auto& vm = run.vm;
  auto& ioc = run.ioc;
  auto& totals = run.totals;
  auto& helpers = run.helpers;
  auto& subs = run.subs;
  auto& rec = run.rec;
  const auto dia = run.dia;
  const auto& publish_to = run.publish_to;
  const auto n = run.n;
  const auto messages = run.messages;
  const auto size = run.size;
  const auto window = run.window;
  const auto missed = run.missed;
  const double rate_asked = run.rate_asked;
  const bool all_connected = run.all_connected;
  const auto pid = run.pid;
  const auto& server0 = run.server0;
  const auto& self0 = run.self0;
  auto& helpers_cpu = run.helpers_cpu;
  const auto latency_cols = [&](const char* prefix) { run.latency_cols(prefix); };
  // 1. a first batch reaches everyone; 2. everyone leaves at once and `missed`
  // messages are published meanwhile; 3. everyone comes back at once with its cursor
  // and must get exactly those (the storm: until the last one has them); 4. live again.
  auto guard = net::make_work_guard(ioc);
  const std::vector<std::string> bench_channel{"bench"};
  bool published = false;
  std::size_t publish_failed = 0;
  std::shared_ptr<publisher> pub;
  auto publish = [&](std::size_t count, std::size_t first) {
    if (pub) publish_failed += pub->failed();
    published = false;
    pub = std::make_shared<publisher>(ioc, dia, publish_to, bench_channel, count, size, window, rate_asked,
                                      [&] { published = true; }, first);
    pub->start();
  };
  auto pub_progress = [&]() -> std::uint64_t { return pub->acknowledged() + pub->failed(); };
  const std::uint64_t total_msgs = 2 * messages + missed;
  const std::int64_t t0 = now_ns();
  publish(messages, 1);
  const auto first = wait_all(ioc, totals, helpers,
                              [&](const helper_report& r) { return published && r.delivered >= n * messages; },
                              std::chrono::seconds(5), pub_progress);
  for (auto& sub : subs) sub->stop();
  for (auto& h : helpers) command(h, 'D');
  gather(totals, helpers);  // a helper answers once its subscribers are closed
  ioc.run_for(std::chrono::milliseconds(200));  // the server sees them go
  publish(missed, messages + 1);
  wait_all(ioc, totals, helpers, [&](const helper_report&) { return published; }, std::chrono::seconds(5),
           pub_progress);
  ioc.run_for(std::chrono::milliseconds(100));
  const std::uint64_t target = messages + missed;
  const auto before = gather(totals, helpers);
  const auto storm_cpu0 = pid ? sample_process(pid) : proc_sample{};
  const std::int64_t t_storm = now_ns();
  for (auto& h : helpers) command(h, 'R', static_cast<std::int64_t>(target));
  for (auto& sub : subs) sub->reconnect(target);
  const auto storm = wait_all(ioc, totals, helpers, [&](const helper_report& r) { return r.caught_up >= n; },
                              std::chrono::seconds(10));
  const auto storm_cpu1 = pid ? sample_process(pid) : proc_sample{};
  const double storm_s =
      storm.caught_up ? static_cast<double>(storm.last_caught_up_ns - t_storm) / 1e9 : 0.0;
  const std::uint64_t replayed = storm.delivered - before.delivered;
  const std::uint64_t resubscribed = storm.connected - before.connected;
  publish(messages, target + 1);
  wait_all(ioc, totals, helpers,
           [&](const helper_report& r) { return published && r.delivered >= n * total_msgs; },
           std::chrono::seconds(5), pub_progress);
  publish_failed += pub->failed();
  for (auto& h : helpers) collect_helper(h, totals, helpers_cpu);
  const double secs = static_cast<double>(now_ns() - t0) / 1e9;
  const auto server1 = pid ? sample_process(pid) : proc_sample{};
  const auto self1 = sample_process(0);
  const double delivered = double(totals.delivered);
  const std::uint64_t expected = n * total_msgs;
  const double replay_rate = storm_s > 0 ? double(replayed) / storm_s : 0.0;
  const double storm_in = replayed ? double(storm.bytes_in - before.bytes_in) / double(replayed) : 0.0;
  const double storm_out = replayed ? double(storm.bytes_out - before.bytes_out) / double(replayed) : 0.0;
  const double storm_cpu = storm_cpu1.cpu_seconds - storm_cpu0.cpu_seconds;
  const double cpu_us = totals.delivered ? (server1.cpu_seconds - server0.cpu_seconds) * 1e6 / delivered : 0.0;
  const double bench_cpu = secs > 0 ? 100.0 * (self1.cpu_seconds - self0.cpu_seconds + helpers_cpu) / secs : 0.0;
  const bool ok = all_connected && first.delivered >= n * messages && resubscribed == n && storm.caught_up == n &&
                  totals.lost == 0 && totals.duplicated == 0 && totals.resets == 0 && totals.delivered == expected;
  std::printf(" | %zu + %zu missed + %zu msgs x %zu B | resubscribed %llu/%zu, caught up %llu in %.3f s, %.0f "
              "replayed msgs/s, resets %llu | delivered %llu/%llu, lost %llu, dup %llu, errors %llu | ",
              messages, missed, messages, size, static_cast<unsigned long long>(resubscribed), n,
              static_cast<unsigned long long>(storm.caught_up), storm_s, replay_rate,
              static_cast<unsigned long long>(totals.resets), static_cast<unsigned long long>(totals.delivered),
              static_cast<unsigned long long>(expected), static_cast<unsigned long long>(totals.lost),
              static_cast<unsigned long long>(totals.duplicated), static_cast<unsigned long long>(totals.errors));
  rec.num("messages", double(messages));
  rec.num("missed", double(missed));
  rec.num("size", double(size));
  rec.num("rate", rate_asked);
  rec.num("window", double(window));
  rec.num("resubscribed", double(resubscribed));
  rec.num("caught_up", double(storm.caught_up));
  rec.num("storm_s", storm_s);
  rec.num("replayed", double(replayed));
  rec.num("replayed_per_s", replay_rate);
  rec.num("expected", double(expected));
  rec.num("delivered", delivered);
  rec.num("lost", double(totals.lost));
  rec.num("duplicated", double(totals.duplicated));
  rec.num("resets", double(totals.resets));
  rec.num("publish_failed", double(publish_failed));
  rec.num("errors_end", double(totals.errors));
  rec.num("seconds", secs);
  latency_cols("live ");
  std::printf(" | storm %.1f B in + %.1f B out per replayed msg | server storm CPU %.1f ms: %.1f us/resume, %.2f us/replayed "
              "msg; %.2f us CPU/msg overall, RSS %.1f MiB | bench CPU %.0f%% |\n",
              storm_in, storm_out, storm_cpu * 1e3, n ? storm_cpu * 1e6 / double(n) : 0.0,
              replayed ? storm_cpu * 1e6 / double(replayed) : 0.0, cpu_us, double(server1.rss_bytes) / 1048576.0,
              bench_cpu);
  rec.num("bytes_in_per_replayed", storm_in);
  rec.num("bytes_out_per_replayed", storm_out);
  rec.num("server_cpu_storm_ms", storm_cpu * 1e3);
  rec.num("server_cpu_us_per_resume", n ? storm_cpu * 1e6 / double(n) : 0.0);
  rec.num("server_cpu_us_per_replayed", replayed ? storm_cpu * 1e6 / double(replayed) : 0.0);
  rec.num("server_cpu_us_per_msg", cpu_us);
  rec.num("server_rss_bytes", double(server1.rss_bytes));
  rec.num("bench_cpu_pct", bench_cpu);
  rec.boolean("ok", ok);
  append_json(vm, rec);
  for (auto& sub : subs) sub->stop();
  return ok ? 0 : 1;
}

}  // namespace herald::bench
