// herald-bench --scenario presence: a room of --members members (one WebSocket each, a
// user each, split over two herald nodes on one Redis), filled at --fill-rate, then for
// --churn-seconds members leave and new ones join at --churn-rate events per second
// (a leave, a join, in turn: the room keeps its size). An observer on each node times
// every join and leave it is told of (from the member's subscribe sent, or its close);
// a querier asks GET /api/presence for the whole room on both nodes in turn. Every
// churn event must reach both observers, and both nodes must count the room alike at
// the end. The bench starts Redis and both nodes unless given --connect and --connect-b.
#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <iostream>
#include <random>
#include <thread>
#include <unordered_map>

#include "driver.hpp"
#include "presence_clients.hpp"
#include "scenarios.hpp"
#include "wire.hpp"

namespace herald::bench {

namespace {

struct member_shard {
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> guard{ioc.get_executor()};
  std::vector<char> discard = std::vector<char>(65536);
  std::unordered_map<std::size_t, std::shared_ptr<room_member>> members;  // touched on its thread only
  std::vector<std::shared_ptr<room_observer>> observers;                 // shard 0's
  net::steady_timer heartbeat{ioc};
  std::thread thread;

  // Every 5 s each member and observer sends a pong (members read nothing else).
  void beat() {
    heartbeat.expires_after(std::chrono::seconds(5));
    heartbeat.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      for (auto& [u, m] : members) m->heartbeat();
      for (auto& o : observers) o->heartbeat();
      beat();
    });
  }
};

tcp::endpoint parse_endpoint(const std::string& hp) {
  const auto colon = hp.rfind(':');
  return {net::ip::make_address(hp.substr(0, colon)), static_cast<unsigned short>(std::stoi(hp.substr(colon + 1)))};
}

// GET /api/presence over one keep-alive connection per node, one at a time, at `rate`
// per second, until told to stop: the round trips, and the last `users` each node gave.
struct presence_querier {
  std::vector<tcp::endpoint> nodes;
  std::string channel;
  std::size_t limit;
  double rate;
  std::atomic<bool> stop{false};
  latency_stats latency;
  std::uint64_t failures = 0;

  // One query; returns `users` of the reply, -1 on failure.
  static long long query(tcp::socket& s, const std::string& request, latency_stats* lat) {
    const auto t = now_ns();
    boost::system::error_code ec;
    net::write(s, net::buffer(request), ec);
    std::string in;
    if (ec || net::read_until(s, net::dynamic_buffer(in), "\r\n\r\n", ec) == 0 || ec) return -1;
    const auto end = in.find("\r\n\r\n") + 4;
    const auto len = number_after(std::string_view(in).substr(0, end), "Content-Length: ");
    if (in.size() < end + len) net::read(s, net::dynamic_buffer(in), net::transfer_exactly(end + len - in.size()), ec);
    if (ec || !in.starts_with("HTTP/1.1 200")) return -1;
    if (lat) lat->add(now_ns() - t);
    return static_cast<long long>(number_after(std::string_view(in).substr(end), "\"users\":"));
  }
  std::string request() const {
    return "GET /api/presence?channel=" + channel + "&limit=" + std::to_string(limit) +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  }
  void run() {
    net::io_context ioc;
    std::vector<tcp::socket> socks;
    for (const auto& n : nodes) {
      socks.emplace_back(ioc);
      socks.back().connect(n);
    }
    const auto req = request();
    const auto period = static_cast<std::int64_t>(1e9 / rate);
    for (std::size_t k = 0; !stop && !g_stop; ++k) {
      if (query(socks[k % socks.size()], req, &latency) < 0) ++failures;
      std::this_thread::sleep_for(std::chrono::nanoseconds(period));
    }
  }
};

// `users` as each node counts them now.
std::vector<long long> count_users(const std::vector<tcp::endpoint>& nodes, const std::string& req) {
  std::vector<long long> out;
  for (const auto& n : nodes) {
    net::io_context ioc;
    tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect(n, ec);
    out.push_back(ec ? -1 : presence_querier::query(s, req, nullptr));
  }
  return out;
}

// Whether GET /readyz answers 200 within 15 s (a node is ready once it reached Redis).
bool wait_ready(const tcp::endpoint& node) {
  for (int i = 0; i < 150 && !g_stop; ++i) {
    net::io_context ioc;
    tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect(node, ec);
    std::string in;
    if (!ec) net::write(s, net::buffer(std::string("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")), ec);
    if (!ec) net::read_until(s, net::dynamic_buffer(in), "\r\n", ec);
    if (!ec && in.starts_with("HTTP/1.1 200")) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

void sleep_until_ns(std::int64_t t) {
  const auto d = t - now_ns();
  if (d > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(d));
  if (g_stop) throw std::runtime_error("stopped by a signal");
}

// Waits until `done()` or nothing moved in `progress()` for `idle`, at most `limit`.
void wait_for(const std::function<bool()>& done, const std::function<std::uint64_t()>& progress,
              std::chrono::seconds idle, std::chrono::seconds limit) {
  const auto start = std::chrono::steady_clock::now();
  auto last = progress();
  auto changed = start;
  while (!done()) {
    if (g_stop) throw std::runtime_error("stopped by a signal");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = std::chrono::steady_clock::now();
    if (const auto p = progress(); p != last) last = p, changed = now;
    if (now - changed > idle || now - start > limit) return;
  }
}

}  // namespace

void add_presence_options(po::options_description& d) {
  // clang-format off
  d.add_options()
    ("members", po::value<std::size_t>()->default_value(10000), "presence: members of the room (one WebSocket and one user each), over two nodes")
    ("fill-rate", po::value<double>()->default_value(1000), "presence: members joining per second while the room fills")
    ("churn-rate", po::value<double>()->default_value(500), "presence: joins + leaves per second once it is full")
    ("churn-seconds", po::value<double>()->default_value(10), "presence: how long the churn lasts")
    ("presence-queries", po::value<double>()->default_value(10), "presence: GET /api/presence per second (both nodes in turn)")
    ("presence-limit", po::value<std::size_t>()->default_value(100), "presence: the queries' limit (clients listed; the counts cover everyone)")
    ("room", po::value<std::string>()->default_value("room:bench"), "presence: the room's channel")
    ("redis-server", po::value<std::string>()->default_value("redis-server"), "presence: the redis-server the bench starts")
    ("connect-b", po::value<std::string>(), "presence: HOST:PORT of the second running node (with --connect)")
    ("server-pid-b", po::value<int>()->default_value(0), "presence: PID of the --connect-b node")
    ("token-secret", po::value<std::string>(), "presence: the HS256 secret of the running nodes' --token-key");
  // clang-format on
}

int run_presence(const po::variables_map& vm) {
  const auto N = vm["members"].as<std::size_t>();
  const double fill_rate = vm["fill-rate"].as<double>(), churn_rate = vm["churn-rate"].as<double>();
  const double churn_s = vm["churn-seconds"].as<double>(), qrate = vm["presence-queries"].as<double>();
  const auto room = vm["room"].as<std::string>();
  const auto threads = std::clamp<std::size_t>(vm["threads"].as<std::size_t>(), 1, 64);
  if (N == 0 || fill_rate <= 0 || churn_rate <= 0 || churn_s <= 0 || qrate <= 0 || N > 18000) {
    std::cerr << "herald-bench: presence needs --members within 1..18000 (one process) and the rates and "
                 "--churn-seconds above 0\n";
    return 2;
  }
  const auto events = static_cast<std::size_t>(churn_rate * churn_s);
  const std::size_t joins = events / 2, leaves = events - joins;  // a leave first, then a join
  const double load0 = load_average();
  server_process redis, node_a, node_b;
  std::vector<tcp::endpoint> nodes;
  std::vector<int> pids{vm["server-pid"].as<int>(), vm["server-pid-b"].as<int>()};
  std::string secret;
  if (vm.count("connect")) {
    if (!vm.count("connect-b") || !vm.count("token-secret")) {
      std::cerr << "herald-bench: with --connect, presence needs --connect-b and --token-secret\n";
      return 2;
    }
    nodes = {parse_endpoint(vm["connect"].as<std::string>()), parse_endpoint(vm["connect-b"].as<std::string>())};
    secret = vm["token-secret"].as<std::string>();
  } else {
    std::random_device rd;
    for (int i = 0; i < 32; ++i) secret += "0123456789abcdef"[rd() % 16];
    redis.port = free_port();
    redis.pid = spawn({"/usr/bin/env", vm["redis-server"].as<std::string>(), "--port", std::to_string(redis.port),
                       "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"},
                      "/dev/null");
    if (!wait_listening(redis.port)) throw std::runtime_error("redis-server did not start listening");
    std::vector<std::string> args{"--broker", "redis://127.0.0.1:" + std::to_string(redis.port), "--token-key",
                                  "hs256:" + secret, "--namespace",
                                  room.substr(0, room.find(':')) + ":presence=true,join_leave=true"};
    if (vm.count("server-arg"))
      for (const auto& a : vm["server-arg"].as<std::vector<std::string>>()) args.push_back(a);
    for (auto* n : {&node_a, &node_b}) {
      start_server(*n, vm["server"].as<std::string>(), args);
      nodes.emplace_back(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(n->port));
    }
    pids = {node_a.pid, node_b.pid};
  }
  for (const auto& n : nodes)
    if (!wait_ready(n)) throw std::runtime_error("a node did not answer GET /readyz with 200 within 15 s");
  auto nodes_cpu = [&] {
    double c = 0;
    for (int p : pids)
      if (p) c += sample_process(p).cpu_seconds;
    return c;
  };

  room_clock clock(N + joins + 1);
  std::vector<std::unique_ptr<member_shard>> shards;
  for (std::size_t i = 0; i < threads; ++i) {
    shards.push_back(std::make_unique<member_shard>());
    shards.back()->beat();
    shards.back()->thread = std::thread([&ioc = shards.back()->ioc] { ioc.run(); });
  }
  struct stop_shards {  // every way out stops the threads first
    std::vector<std::unique_ptr<member_shard>>& s;
    ~stop_shards() {
      for (auto& sh : s) sh->guard.reset(), sh->ioc.stop();
      for (auto& sh : s)
        if (sh->thread.joinable()) sh->thread.join();
    }
  } stopper{shards};
  auto add_member = [&](std::size_t user, bool timed) {
    auto& sh = *shards[user % threads];
    net::post(sh.ioc, [&sh, &clock, &room, node = nodes[user % 2], user, timed,
                       token = hs256_token(secret, "u" + std::to_string(user))] {
      auto m = std::make_shared<room_member>(sh.ioc, node, room, user, token, clock, timed, sh.discard);
      sh.members[user] = m;
      m->join();
    });
  };
  auto remove_member = [&](std::size_t user) {
    auto& sh = *shards[user % threads];
    net::post(sh.ioc, [&sh, user] {
      if (auto it = sh.members.find(user); it != sh.members.end()) it->second->leave(), sh.members.erase(it);
    });
  };

  std::vector<observer_totals> seen(2);
  std::vector<std::shared_ptr<room_observer>> observers;
  for (std::size_t k = 0; k < 2; ++k)
    observers.push_back(std::make_shared<room_observer>(shards[0]->ioc, nodes[k], room,
                                                        hs256_token(secret, "observer-" + std::to_string(k)), clock,
                                                        seen[k]));
  net::post(shards[0]->ioc, [&] {
    shards[0]->observers = observers;
    for (auto& o : observers) o->start();
  });
  wait_for([&] { return (seen[0].subscribed && seen[1].subscribed) || seen[0].failed || seen[1].failed; },
           [] { return 0; }, std::chrono::seconds(10), std::chrono::seconds(10));

  // Fill: members join at fill-rate; filled once both observers saw every join.
  const auto fill0 = now_ns();
  for (std::size_t u = 0; u < N; ++u) {
    sleep_until_ns(fill0 + static_cast<std::int64_t>(double(u) * 1e9 / fill_rate));
    add_member(u, false);
  }
  wait_for([&] { return seen[0].joins >= N && seen[1].joins >= N && clock.subscribed >= N; },
           [&] { return seen[0].joins + seen[1].joins + clock.subscribed; }, std::chrono::seconds(10),
           std::chrono::seconds(120));
  const double fill_s = double(now_ns() - fill0) / 1e9;
  const bool filled = seen[0].joins >= N && seen[1].joins >= N && clock.subscribed >= N;
  if (!filled)
    std::cerr << "herald-bench: the room did not fill: " << clock.subscribed << " of " << N
              << " members subscribed (" << clock.refused << " refused, " << clock.errors << " errors), observers saw "
              << seen[0].joins << " and " << seen[1].joins << " joins\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // Churn: a random member leaves, a new one joins, in turn.
  presence_querier querier;
  querier.nodes = nodes, querier.channel = room, querier.limit = vm["presence-limit"].as<std::size_t>();
  querier.rate = qrate;
  std::thread qthread([&] {
    try {
      querier.run();
    } catch (const std::exception&) {
      ++querier.failures;
    }
  });
  std::vector<std::size_t> present(N);
  for (std::size_t u = 0; u < N; ++u) present[u] = u;
  std::mt19937_64 rng(42);
  const double cpu0 = nodes_cpu(), redis0 = redis.pid > 0 ? sample_process(redis.pid).cpu_seconds : 0;
  const auto self0 = sample_process(0);
  const auto t0 = now_ns();
  std::size_t next_user = N;
  for (std::size_t k = 0; k < events; ++k) {
    sleep_until_ns(t0 + static_cast<std::int64_t>(double(k) * 1e9 / churn_rate));
    if (k % 2 == 0) {
      const auto i = rng() % present.size();
      remove_member(present[i]);
      present[i] = present.back();
      present.pop_back();
    } else {
      add_member(next_user, true);
      present.push_back(next_user++);
    }
  }
  const double churn_real_s = double(now_ns() - t0) / 1e9;
  wait_for([&] {
             return seen[0].timed_joins >= joins && seen[1].timed_joins >= joins && seen[0].timed_leaves >= leaves &&
                    seen[1].timed_leaves >= leaves;
           },
           [&] { return seen[0].joins + seen[1].joins + seen[0].leaves + seen[1].leaves; }, std::chrono::seconds(5),
           std::chrono::seconds(60));
  const double settle_s = double(now_ns() - t0) / 1e9;
  querier.stop = true;
  qthread.join();
  const double cpu1 = nodes_cpu(), redis1 = redis.pid > 0 ? sample_process(redis.pid).cpu_seconds : 0;
  const auto self1 = sample_process(0);
  const auto users = count_users(nodes, querier.request());
  net::post(shards[0]->ioc, [&] {
    for (auto& o : observers) o->stop();
  });
  for (auto& sh : shards) sh->guard.reset(), sh->ioc.stop();
  for (auto& sh : shards) sh->thread.join();

  latency_stats join_lat, leave_lat;
  for (auto& s : seen) join_lat.merge(s.join_latency.samples()), leave_lat.merge(s.leave_latency.samples());
  const auto expect_users = static_cast<long long>(N + 2);  // the members and both observers
  const bool counts_ok = users.size() == 2 && users[0] == expect_users && users[1] == expect_users;
  const bool all_seen = seen[0].timed_joins == joins && seen[1].timed_joins == joins &&
                        seen[0].timed_leaves == leaves && seen[1].timed_leaves == leaves;
  const bool ok = filled && all_seen && counts_ok && !seen[0].failed && !seen[1].failed && clock.refused == 0 &&
                  clock.errors == 0 && querier.failures == 0;
  const double cpu_event = events ? (cpu1 - cpu0) * 1e6 / double(events) : 0.0;
  const double redis_event = events ? (redis1 - redis0) * 1e6 / double(events) : 0.0;
  const double bench_cpu = 100.0 * (self1.cpu_seconds - self0.cpu_seconds) / settle_s;
  auto ms = [](latency_stats& l, double q) { return l.percentile_us(q) / 1000.0; };
  std::printf("| herald x2 + redis | presence | ws | %zu members, filled in %.1f s%s | %zu events in %.1f s (%.0f/s "
              "asked, %.0f/s reached; %.0f deliveries/s of fan-out) | seen by observers: joins %llu+%llu/%zu, leaves "
              "%llu+%llu/%zu | join p50 %.1f ms, p99 %.1f ms; leave p50 %.1f ms, p99 %.1f ms | presence query "
              "p50 %.2f ms, p99 %.2f ms (%zu, limit %zu), users %lld/%lld | nodes %.0f us CPU/event, redis %.0f "
              "us/event | bench CPU %.0f%% | load %.1f |\n",
              N, fill_s, filled ? "" : " (NOT all seen)", events, churn_real_s, churn_rate,
              double(events) / churn_real_s, churn_rate * double(N),
              static_cast<unsigned long long>(seen[0].timed_joins.load()),
              static_cast<unsigned long long>(seen[1].timed_joins.load()), joins,
              static_cast<unsigned long long>(seen[0].timed_leaves.load()),
              static_cast<unsigned long long>(seen[1].timed_leaves.load()), leaves, ms(join_lat, 0.5),
              ms(join_lat, 0.99), ms(leave_lat, 0.5), ms(leave_lat, 0.99), ms(querier.latency, 0.5),
              ms(querier.latency, 0.99), querier.latency.count(), querier.limit, users.empty() ? -1 : users[0],
              users.size() < 2 ? -1 : users[1], cpu_event, redis_event, bench_cpu, load_average());
  json_record rec;
  rec.str("time", utc_now());
  rec.str("label", vm["label"].as<std::string>());
  rec.str("server", "herald");
  rec.str("scenario", "presence");
  rec.str("transport", "ws");
  rec.num("members", double(N));
  rec.num("fill_rate", fill_rate);
  rec.num("fill_s", fill_s);
  rec.num("churn_rate", churn_rate);
  rec.num("churn_s", churn_real_s);
  rec.num("events", double(events));
  rec.num("events_per_s", double(events) / churn_real_s);
  rec.num("fanout_per_s_asked", churn_rate * double(N));
  rec.num("joins_expected", double(joins));
  rec.num("leaves_expected", double(leaves));
  rec.num("joins_seen_min", double(std::min(seen[0].timed_joins.load(), seen[1].timed_joins.load())));
  rec.num("leaves_seen_min", double(std::min(seen[0].timed_leaves.load(), seen[1].timed_leaves.load())));
  rec.num("join_p50_ms", ms(join_lat, 0.5));
  rec.num("join_p99_ms", ms(join_lat, 0.99));
  rec.num("leave_p50_ms", ms(leave_lat, 0.5));
  rec.num("leave_p99_ms", ms(leave_lat, 0.99));
  rec.num("query_p50_ms", ms(querier.latency, 0.5));
  rec.num("query_p99_ms", ms(querier.latency, 0.99));
  rec.num("queries", double(querier.latency.count()));
  rec.num("query_failures", double(querier.failures));
  rec.num("presence_limit", double(querier.limit));
  rec.num("users_a", users.empty() ? -1.0 : double(users[0]));
  rec.num("users_b", users.size() < 2 ? -1.0 : double(users[1]));
  rec.num("member_errors", double(clock.errors + clock.refused));
  rec.num("server_cpu_us_per_event", cpu_event);
  rec.num("redis_cpu_us_per_event", redis_event);
  rec.num("bench_cpu_pct", bench_cpu);
  rec.num("load1_before", load0);
  rec.num("load1_after", load_average());
  rec.boolean("ok", ok);
  append_json(vm, rec);
  return ok ? 0 : 1;
}

}  // namespace herald::bench
