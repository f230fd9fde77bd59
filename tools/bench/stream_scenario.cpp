// herald-bench --scenario stream: S concurrent answers of T tokens at R tokens/s, each
// produced through one chunked POST /api/stream (text/plain deltas, coalesced by the
// server) held open while the tokens are written at their pace; each followed from the
// first token by --readers readers (SSE and WebSocket, alternating), a fraction of which
// drop their connection every --drop-every ms and resume from their cursor at once.
// Every reader's text must equal its producer's byte for byte, every offset once and in
// order, and the end must say `completed`: anything else fails the run.
// One io_context per thread (--threads), each owning whole streams (producer and readers).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <sstream>
#include <thread>

#include "driver.hpp"
#include "scenarios.hpp"
#include "stream_clients.hpp"

namespace herald::bench {

namespace {

struct shard {
  net::io_context ioc{1};
  stream_totals totals;
  std::vector<std::shared_ptr<stream_producer>> producers;
  std::vector<std::shared_ptr<stream_reader>> readers;
  std::vector<std::int64_t> next_drop;  // per reader: when it drops next (0: it never drops)
  std::atomic<bool> ready{false}, finished{false};
};

struct pacing {
  std::atomic<std::int64_t> t0{0};  // the common start, set once every shard is ready
  std::int64_t interval_ns, drop_every_ns, slack_ns;
};

void run_shard(shard& s, pacing& p) {
  std::size_t n = 0;
  for (auto& pr : s.producers) pr->start();
  for (auto& r : s.readers) {
    r->start();
    if (++n % 256 == 0) s.ioc.poll();
  }
  const auto connect_deadline = now_ns() + 20'000'000'000;
  while (now_ns() < connect_deadline && !g_stop &&
         (s.totals.readers_connected < s.readers.size() || s.totals.producers_connected < s.producers.size()))
    s.ioc.run_for(std::chrono::milliseconds(5));
  s.ready = true;
  std::int64_t t0;
  while (!(t0 = p.t0.load()) && !g_stop) s.ioc.run_for(std::chrono::milliseconds(2));
  for (auto& d : s.next_drop)
    if (d) d += t0;
  const auto deadline = t0 + p.slack_ns;
  auto next_beat = t0 + 5'000'000'000;
  for (;;) {
    const auto now = now_ns();
    if (now >= next_beat) {
      for (auto& r : s.readers) r->heartbeat();
      next_beat = now + 5'000'000'000;
    }
    for (auto& pr : s.producers) pr->pump(now, t0, p.interval_ns);
    for (std::size_t i = 0; i < s.readers.size(); ++i)
      if (s.next_drop[i] && now >= s.next_drop[i]) {
        s.readers[i]->drop();
        s.next_drop[i] = s.readers[i]->done() ? 0 : now + p.drop_every_ns;
      }
    const bool all = std::all_of(s.readers.begin(), s.readers.end(), [](auto& r) { return r->done(); }) &&
                     std::all_of(s.producers.begin(), s.producers.end(), [](auto& pr) { return pr->replied(); });
    if (all) break;
    if (now > deadline || g_stop) {
      for (auto& r : s.readers) r->abandon();
      for (auto& pr : s.producers)
        if (!pr->replied()) ++s.totals.producer_errors;
      break;
    }
    s.ioc.run_for(std::chrono::milliseconds(1));
  }
  s.finished = true;
}

void add(stream_totals& a, stream_totals& b) {
  a.readers_exact += b.readers_exact, a.readers_done += b.readers_done, a.mismatched += b.mismatched;
  a.duplicates += b.duplicates, a.gaps += b.gaps, a.resets += b.resets, a.errors += b.errors;
  a.delivered += b.delivered, a.resumes += b.resumes, a.not_completed += b.not_completed;
  a.producers_completed += b.producers_completed, a.producer_errors += b.producer_errors;
  a.end_offsets += b.end_offsets, a.readers_connected += b.readers_connected;
  a.producers_connected += b.producers_connected, a.unfinished += b.unfinished;
  a.last_write_ns = std::max(a.last_write_ns, b.last_write_ns);
  a.token_latency.merge(b.token_latency.samples());
  a.steady_latency.merge(b.steady_latency.samples());
  a.first_token.merge(b.first_token.samples());
  a.resume.merge(b.resume.samples());
}

std::vector<transport> parse_transports(const std::string& list) {
  std::vector<transport> out;
  std::stringstream in(list);
  for (std::string t; std::getline(in, t, ',');) {
    out.push_back(parse_transport(t));
    if (out.back() == transport::poll) throw std::invalid_argument("stream readers are sse or ws");
  }
  if (out.empty()) throw std::invalid_argument("--reader-transports is empty");
  return out;
}

// The soft limit of open files raised to the hard one; returns it.
rlim_t raise_file_limit() {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  l.rlim_cur = l.rlim_max;
  setrlimit(RLIMIT_NOFILE, &l);
  getrlimit(RLIMIT_NOFILE, &l);
  return l.rlim_cur;
}

}  // namespace

void add_stream_options(po::options_description& d) {
  // clang-format off
  d.add_options()
    ("streams", po::value<std::size_t>()->default_value(1000), "stream: concurrent answers (one producer connection each)")
    ("tokens", po::value<std::size_t>()->default_value(200), "stream: tokens of each answer")
    ("token-rate", po::value<double>()->default_value(50), "stream: tokens per second of each answer")
    ("readers", po::value<std::size_t>()->default_value(2), "stream: readers per answer")
    ("reader-transports", po::value<std::string>()->default_value("sse,ws"), "stream: the readers' transports, taken in turn (sse, ws)")
    ("drop-fraction", po::value<double>()->default_value(0.5), "stream: fraction of the readers that drop and resume")
    ("drop-every", po::value<double>()->default_value(1000), "stream: ms between two drops of a dropping reader (each its own phase)")
    ("coalesce-ms", po::value<std::size_t>()->default_value(25), "stream: the namespace's stream_coalesce_ms (a started server)")
    ("stream-namespace", po::value<std::string>()->default_value("bench"), "stream: the channels' namespace (bench:s0, bench:s1, ...)")
    ("threads", po::value<std::size_t>()->default_value(2), "stream and presence: driver threads, one io_context each");
  // clang-format on
}

int run_stream(const po::variables_map& vm) {
  const auto S = vm["streams"].as<std::size_t>(), T = vm["tokens"].as<std::size_t>();
  const auto R = vm["readers"].as<std::size_t>();
  const double rate = vm["token-rate"].as<double>(), fraction = vm["drop-fraction"].as<double>();
  const double drop_every = vm["drop-every"].as<double>();
  const auto threads = std::clamp<std::size_t>(vm["threads"].as<std::size_t>(), 1, 64);
  const auto transports = parse_transports(vm["reader-transports"].as<std::string>());
  const auto ns = vm["stream-namespace"].as<std::string>();
  if (S == 0 || T == 0 || rate <= 0 || fraction < 0 || fraction > 1 || drop_every <= 0) {
    std::cerr << "herald-bench: stream needs --streams, --tokens, --token-rate and --drop-every above 0 and "
                 "--drop-fraction within 0..1\n";
    return 2;
  }
  const auto files = raise_file_limit();
  if (S * (R + 1) + 64 > files) {
    std::cerr << "herald-bench: " << S * (R + 1) << " connections need more open files than the limit (" << files
              << ")\n";
    return 2;
  }
  const double load0 = load_average();
  server_process srv;
  tcp::endpoint server;
  int pid = vm["server-pid"].as<int>();
  if (vm.count("connect")) {
    const auto hp = vm["connect"].as<std::string>();
    const auto colon = hp.rfind(':');
    server = {net::ip::make_address(hp.substr(0, colon)), static_cast<unsigned short>(std::stoi(hp.substr(colon + 1)))};
  } else {
    std::vector<std::string> args{"--namespace", ns + ":stream_coalesce_ms=" +
                                                     std::to_string(vm["coalesce-ms"].as<std::size_t>()) +
                                                     ",history_size=100000,history_ttl=600,stream_idle_timeout=60"};
    if (vm.count("server-arg"))
      for (const auto& a : vm["server-arg"].as<std::vector<std::string>>()) args.push_back(a);
    start_server(srv, vm["server"].as<std::string>(), args);
    pid = srv.pid;
    server = {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port)};
  }
  const auto rss0 = pid ? sample_process(pid).rss_bytes : 0;

  std::vector<std::unique_ptr<stream_plan>> plans;
  std::vector<std::unique_ptr<shard>> shards;
  for (std::size_t i = 0; i < threads; ++i) shards.push_back(std::make_unique<shard>());
  pacing pace;
  pace.interval_ns = static_cast<std::int64_t>(1e9 / rate);
  pace.drop_every_ns = static_cast<std::int64_t>(drop_every * 1e6);
  pace.slack_ns = static_cast<std::int64_t>(double(T) * 1e9 / rate) + 30'000'000'000;
  std::size_t dropping = 0;
  for (std::size_t s = 0; s < S; ++s) {
    plans.push_back(std::make_unique<stream_plan>(ns + ":s" + std::to_string(s), s, T));
    auto& sh = *shards[s % threads];
    // The producers' first tokens spread over one interval.
    const auto phase = static_cast<std::int64_t>(double(s) * double(pace.interval_ns) / double(S));
    sh.producers.push_back(std::make_shared<stream_producer>(sh.ioc, server, *plans.back(), sh.totals, phase));
    for (std::size_t j = 0; j < R; ++j) {
      const auto t = transports[(s + j) % transports.size()];
      const auto k = double(s * R + j);
      const bool drops = std::floor((k + 1) * fraction) > std::floor(k * fraction);
      sh.readers.push_back(std::make_shared<stream_reader>(sh.ioc, server, t, *plans.back(), sh.totals, drops));
      // A dropping reader's first drop comes 0.5 to 1.5 intervals in, each reader its own phase.
      const double phase_frac = std::fmod(k * 0.6180339887, 1.0);
      sh.next_drop.push_back(drops ? static_cast<std::int64_t>((0.5 + phase_frac) * double(pace.drop_every_ns)) : 0);
      dropping += drops;
    }
  }
  std::vector<std::thread> workers;
  for (auto& sh : shards) workers.emplace_back([&sh, &pace] { run_shard(*sh, pace); });
  while (!std::all_of(shards.begin(), shards.end(), [](auto& sh) { return sh->ready.load(); }) && !g_stop)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto server0 = pid ? sample_process(pid) : proc_sample{};
  const auto self0 = sample_process(0);
  const auto t0 = now_ns() + 50'000'000;
  pace.t0 = t0;
  std::uint64_t rss_peak = server0.rss_bytes;
  while (!std::all_of(shards.begin(), shards.end(), [](auto& sh) { return sh->finished.load(); })) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (pid) rss_peak = std::max(rss_peak, sample_process(pid).rss_bytes);
  }
  for (auto& w : workers) w.join();
  const auto t_end = now_ns();
  const auto server1 = pid ? sample_process(pid) : proc_sample{};
  const auto self1 = sample_process(0);

  stream_totals all;
  for (auto& sh : shards) add(all, sh->totals);
  const double tokens = double(S * T), readers = double(S * R);
  const double write_s = all.last_write_ns > t0 ? double(all.last_write_ns - t0) / 1e9 : 0.0;
  const double run_s = double(t_end - t0) / 1e9;
  const double tokens_per_s = write_s > 0 ? tokens / write_s : 0.0;
  const double cpu = server1.cpu_seconds - server0.cpu_seconds;
  const double cpu_token = cpu * 1e6 / tokens;
  const double cpu_msg = all.delivered ? cpu * 1e6 / double(all.delivered) : 0.0;
  const double rss_stream = pid ? (double(rss_peak) - double(rss0)) / double(S) : 0.0;
  const double msgs_stream = all.producers_completed ? double(all.end_offsets) / double(all.producers_completed) : 0;
  const double bench_cpu = run_s > 0 ? 100.0 * (self1.cpu_seconds - self0.cpu_seconds) / run_s : 0.0;
  auto ms = [](latency_stats& l, double q) { return l.percentile_us(q) / 1000.0; };
  const bool ok = all.readers_exact == S * R && all.producers_completed == S && all.duplicates == 0 &&
                  all.gaps == 0 && all.resets == 0 && all.errors == 0 && all.unfinished == 0 &&
                  all.mismatched == 0 && all.not_completed == 0;
  std::printf("| herald | stream | %s | %zu streams x %zu tokens at %.0f/s, %zu readers each (%zu dropping) | "
              "producers completed %llu/%zu, readers exact %llu/%.0f, mismatched %llu, dup %llu, gaps %llu, resets "
              "%llu, errors %llu, unfinished %llu | %.0f tokens/s (asked %.0f), %.1f msgs/stream | token p50 %.1f ms, "
              "p99 %.1f ms, max %.1f ms; readers never dropped: p50 %.1f ms, p99 %.1f ms | first token p50 %.1f ms, p99 %.1f ms | %llu resumes p50 %.1f ms, p99 %.1f ms | "
              "server %.2f us CPU/token, %.2f us CPU/delivered msg, RSS +%.1f KiB/stream | bench CPU %.0f%% | load %.1f |\n",
              vm["reader-transports"].as<std::string>().c_str(), S, T, rate, R, dropping,
              static_cast<unsigned long long>(all.producers_completed), S,
              static_cast<unsigned long long>(all.readers_exact), readers,
              static_cast<unsigned long long>(all.mismatched), static_cast<unsigned long long>(all.duplicates),
              static_cast<unsigned long long>(all.gaps), static_cast<unsigned long long>(all.resets),
              static_cast<unsigned long long>(all.errors), static_cast<unsigned long long>(all.unfinished),
              tokens_per_s, double(S) * rate, msgs_stream, ms(all.token_latency, 0.5), ms(all.token_latency, 0.99),
              ms(all.token_latency, 1.0), ms(all.steady_latency, 0.5), ms(all.steady_latency, 0.99),
              ms(all.first_token, 0.5), ms(all.first_token, 0.99),
              static_cast<unsigned long long>(all.resumes), ms(all.resume, 0.5), ms(all.resume, 0.99), cpu_token,
              cpu_msg, rss_stream / 1024.0, bench_cpu, load_average());
  json_record rec;
  rec.str("time", utc_now());
  rec.str("label", vm["label"].as<std::string>());
  rec.str("server", "herald");
  rec.str("scenario", "stream");
  rec.str("transport", vm["reader-transports"].as<std::string>());
  rec.num("streams", double(S));
  rec.num("tokens", double(T));
  rec.num("token_rate", rate);
  rec.num("readers", double(R));
  rec.num("dropping_readers", double(dropping));
  rec.num("drop_every_ms", drop_every);
  rec.num("coalesce_ms", double(vm["coalesce-ms"].as<std::size_t>()));
  rec.num("threads", double(threads));
  rec.num("producers_completed", double(all.producers_completed));
  rec.num("producer_errors", double(all.producer_errors));
  rec.num("readers_exact", double(all.readers_exact));
  rec.num("readers_total", readers);
  rec.num("mismatched", double(all.mismatched));
  rec.num("duplicated", double(all.duplicates));
  rec.num("gaps", double(all.gaps));
  rec.num("resets", double(all.resets));
  rec.num("errors_end", double(all.errors));
  rec.num("unfinished", double(all.unfinished));
  rec.num("not_completed", double(all.not_completed));
  rec.num("tokens_per_s", tokens_per_s);
  rec.num("tokens_per_s_asked", double(S) * rate);
  rec.num("messages_per_stream", msgs_stream);
  rec.num("delivered", double(all.delivered));
  rec.num("seconds", run_s);
  rec.num("token_p50_ms", ms(all.token_latency, 0.5));
  rec.num("token_p99_ms", ms(all.token_latency, 0.99));
  rec.num("token_max_ms", ms(all.token_latency, 1.0));
  rec.num("steady_token_p50_ms", ms(all.steady_latency, 0.5));
  rec.num("steady_token_p99_ms", ms(all.steady_latency, 0.99));
  rec.num("first_token_p50_ms", ms(all.first_token, 0.5));
  rec.num("first_token_p99_ms", ms(all.first_token, 0.99));
  rec.num("resumes", double(all.resumes));
  rec.num("resume_p50_ms", ms(all.resume, 0.5));
  rec.num("resume_p99_ms", ms(all.resume, 0.99));
  rec.num("server_cpu_us_per_token", cpu_token);
  rec.num("server_cpu_us_per_msg", cpu_msg);
  rec.num("server_rss_bytes", double(rss_peak));
  rec.num("rss_per_stream_bytes", rss_stream);
  rec.num("bench_cpu_pct", bench_cpu);
  rec.num("load1_before", load0);
  rec.num("load1_after", load_average());
  rec.boolean("ok", ok);
  append_json(vm, rec);
  return ok ? 0 : 1;
}

}  // namespace herald::bench
