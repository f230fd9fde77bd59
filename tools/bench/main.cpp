// herald-bench: drives subscribers over ws, sse or long polling and a publisher against
// a herald it starts itself (or any server given by address), checks every delivery
// for loss, duplication and order, and reports delivered msgs/s, publish-to-receive
// latency, bytes on the wire per delivered message, server CPU per delivered message
// and server memory. Black box: it speaks HTTP and WebSocket only.
// Two scenarios use herald's own protocol: chat (WebSocket clients publishing into one
// room over their connections, everyone receiving everything, checked per sender and
// receiver) and resume (every subscriber leaves at once, messages are published, all come
// back at once with their cursors and must get exactly what they missed).
// chat and resume run in phased.cpp, the stream and presence scenarios in files of their
// own (scenarios.hpp); helpers.cpp has the --procs helper processes, peers.cpp the peers.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/program_options.hpp>
#include <cmath>
#include <cstring>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <thread>

#include "baseline.hpp"
#include "clients.hpp"
#include "driver.hpp"
#include "helpers.hpp"
#include "peers.hpp"
#include "phased.hpp"
#include "scenarios.hpp"

namespace po = boost::program_options;
using namespace herald::bench;

int run(int argc, char** argv) {
  po::options_description d("herald-bench options");
  // clang-format off
  d.add_options()
    ("help,h", "print this help")
    ("server", po::value<std::string>()->default_value("build/src/herald"), "herald binary to start (ignored with --connect)")
    ("server-arg", po::value<std::vector<std::string>>(), "extra argument for the started server (repeatable)")
    ("connect", po::value<std::string>(), "HOST:PORT of a running server instead of starting one")
    ("server-pid", po::value<int>()->default_value(0), "PID of the --connect server, for CPU and memory figures")
    ("scenario", po::value<std::string>()->default_value("fanout"), "fanout | channels | idle | connect | chat | resume | stream | presence (the last four: herald only)")
    ("transport", po::value<std::string>()->default_value("ws"), "ws | sse | poll")
    ("subscribers", po::value<std::size_t>()->default_value(1000), "subscriber connections (chat: clients; at most 15000 per process)")
    ("procs", po::value<std::size_t>()->default_value(1), "processes sharing the subscribers, each from its own 127.0.0.x source address")
    ("messages", po::value<std::size_t>()->default_value(100), "messages to publish (chat: per client; resume: before the disconnect, and again after the catch-up)")
    ("missed", po::value<std::size_t>()->default_value(100), "resume: messages published while every subscriber is away (keep it within the server's --history-size)")
    ("size", po::value<std::size_t>()->default_value(100), "bytes of each message's data")
    ("rate", po::value<double>()->default_value(0), "publishes per second (0: as fast as the window allows; chat: over all clients, each its share)")
    ("window", po::value<std::size_t>()->default_value(1), "publish requests in flight (1: one message per write; chat: per client)")
    ("connect-rate", po::value<double>()->default_value(0), "subscribers opened per second, over all processes (0: all at once)")
    ("shared-channel", "idle: every subscriber on one channel (default: one channel each)")
    ("peer", po::value<std::string>()->default_value("herald"), "herald | nchan | ws-node | pushpin (configs in bench/peers; run from the repository root) | baseline (the physical limit: one send() of the same bytes per message per socket, no protocol; ws and sse)")
    ("format", po::value<std::string>()->default_value("json"), "herald's wire format for the subscribers: json | raw (docs/protocol.md, \"Raw formats\"; fanout, channels and idle)")
    ("baseline-bytes", po::value<std::size_t>()->default_value(0), "baseline: bytes on the wire per delivered message (0: --size + 100, about herald's default framing)")
    ("baseline-server", po::value<int>(), "internal: serve as the baseline peer on this port")
    ("json", po::value<std::string>(), "append the result to this file as one JSON object per line (bench/report.py reads it)")
    ("label", po::value<std::string>()->default_value(""), "free text stored with the JSON result (e.g. the round)")
    ("keep-peer-dir", "keep a peer's generated configuration and logs (its directory is printed on stderr)");
  // clang-format on
  add_stream_options(d);
  add_presence_options(d);
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, d), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "herald-bench: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "herald-bench: load and measure a push server (WebSocket, SSE, long polling)\n\n" << d
              << "\nPrints one Markdown table row per run (and with --json one JSON line);\n"
                 "docs/benchmarks.md has the standard set (make bench) and the report.\n";
    return 0;
  }
  if (vm.count("baseline-server"))
    return run_baseline_server(vm["baseline-server"].as<int>(), vm["baseline-bytes"].as<std::size_t>());
  const auto scenario = vm["scenario"].as<std::string>();
  if (scenario == "stream") return run_stream(vm);
  if (scenario == "presence") return run_presence(vm);
  const auto t = parse_transport(vm["transport"].as<std::string>());
  const auto n = vm["subscribers"].as<std::size_t>();
  const auto messages = vm["messages"].as<std::size_t>();
  const auto size = vm["size"].as<std::size_t>();
  const auto procs = std::max<std::size_t>(1, vm["procs"].as<std::size_t>());
  const bool chat = scenario == "chat", resume = scenario == "resume";
  const auto missed = vm["missed"].as<std::size_t>();
  if ((chat || resume) && vm["peer"].as<std::string>() != "herald") {
    std::cerr << "herald-bench: the chat and resume scenarios speak herald's protocol only\n";
    return 2;
  }
  const auto format = vm["format"].as<std::string>();
  const bool raw = format == "raw";
  if (format != "json" && !raw) {
    std::cerr << "herald-bench: --format json|raw\n";
    return 2;
  }
  if (raw && (chat || resume || vm["peer"].as<std::string>() != "herald")) {
    std::cerr << "herald-bench: --format raw is herald's, for the fanout, channels and idle scenarios\n";
    return 2;
  }
  if (chat && t != transport::ws) {
    std::cerr << "herald-bench: chat clients publish over their WebSocket: --transport ws\n";
    return 2;
  }
  if (resume && (missed == 0 || messages == 0)) {
    std::cerr << "herald-bench: resume needs --messages and --missed of at least 1\n";
    return 2;
  }
  if (chat && vm["rate"].as<double>() / double(std::max<std::size_t>(1, n)) > 900)
    std::cerr << "herald-bench: note: over 900 publishes/s per client, near herald's default --ws-commands-per-second "
                 "(1000; --server-arg=--ws-commands-per-second=0 lifts it)\n";
  if (n / procs > 15000 || procs > 64) {
    std::cerr << "herald-bench: at most 15000 subscribers per process (the open-file limit is 20000): use --procs\n";
    return 2;
  }

  server_process srv, origin;
  tcp::endpoint server, publish_to;
  int pid = vm["server-pid"].as<int>();
  const auto peer = vm["peer"].as<std::string>();
  const dialect dia = peer == "herald" ? dialect::herald : peer == "pushpin" ? dialect::pushpin : dialect::peer;
  if (peer != "herald") {
    if (peer == "ws-node" && t != transport::ws) {
      std::cerr << "herald-bench: the ws-node peer serves WebSocket only\n";
      return 2;
    }
    if (peer == "baseline" && t == transport::poll) {
      std::cerr << "herald-bench: the baseline serves WebSocket and SSE\n";
      return 2;
    }
    const auto wire = vm["baseline-bytes"].as<std::size_t>();
    start_peer(srv, origin, peer, wire ? wire : size + 100);
    pid = srv.pid;
    server = {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port)};
  } else if (vm.count("connect")) {
    auto hp = vm["connect"].as<std::string>();
    auto colon = hp.rfind(':');
    server = {net::ip::make_address(hp.substr(0, colon)), static_cast<unsigned short>(std::stoi(hp.substr(colon + 1)))};
  } else {
    std::vector<std::string> args;
    // Chat clients publish in the chat: namespace (a later --namespace chat:... given
    // with --server-arg replaces this one).
    if (chat) args = {"--namespace", "chat:client_publish=true"};
    if (vm.count("server-arg"))
      for (const auto& a : vm["server-arg"].as<std::vector<std::string>>()) args.push_back(a);
    start_server(srv, vm["server"].as<std::string>(), args);
    pid = srv.pid;
    server = {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port)};
  }
  if (vm.count("keep-peer-dir") && !srv.tmpdir.empty()) {
    std::cerr << "herald-bench: peer directory " << srv.tmpdir << "\n";
    srv.tmpdir.clear();
  }
  publish_to = server;
  if (srv.publish_port) publish_to.port(static_cast<unsigned short>(srv.publish_port));

  const auto rss0 = pid ? sample_process(pid).rss_bytes : 0;
  const auto self_connect = sample_process(0);
  const auto server_connect = pid ? sample_process(pid) : proc_sample{};
  const auto t_connect = now_ns();
  // Subscribers i with i % procs == k belong to process k (0: this one, which also
  // publishes and reports); helpers report back through a pipe.
  std::vector<helper> helpers;
  std::size_t k_self = 0;
  for (std::size_t k = 1; k < procs; ++k) {
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0) throw std::runtime_error("pipe failed");
    pid_t child = fork();
    if (child == 0) {
      srv.pid = origin.pid = -1;  // the servers belong to the parent
      srv.tmpdir.clear();
      k_self = k;
      close(up[0]);
      close(down[1]);
      helpers.clear();
      helpers.push_back({0, down[0], up[1]});  // this helper's own ends
      break;
    }
    close(up[1]);
    close(down[0]);
    helpers.push_back({child, up[0], down[1]});
  }
  const bool is_helper = k_self != 0;
  net::io_context ioc(1);
  delivery_totals totals;
  std::vector<std::shared_ptr<subscriber>> subs;
  std::vector<std::shared_ptr<chat_client>> chats;
  const double rate_asked = vm["rate"].as<double>();
  const auto window = vm["window"].as<std::size_t>();
  std::size_t mine = 0;
  const tcp::endpoint source(net::ip::make_address_v4(0x7f000001u + static_cast<unsigned>(k_self)), 0);
  const double connect_rate = vm["connect-rate"].as<double>();
  for (std::size_t i = k_self; i < n; i += procs) {
    if (connect_rate > 0)  // paced: subscriber i opens at i / rate seconds
      ioc.run_until(std::chrono::steady_clock::now() +
                    std::chrono::nanoseconds(std::max<std::int64_t>(
                        0, t_connect + static_cast<std::int64_t>(double(i) * 1e9 / connect_rate) - now_ns())));
    const bool own_channel = scenario == "channels" || (scenario == "idle" && !vm.count("shared-channel"));
    std::string ch = own_channel ? "bench:" + std::to_string(i) : "bench";
    if (chat) {
      // Each client publishes rate/n per second; client i starts i/rate seconds in, so
      // that the publications of all of them are evenly spread.
      const double each = rate_asked / double(n);
      const auto offset = rate_asked > 0 ? static_cast<std::int64_t>(double(i) * 1e9 / rate_asked) : 0;
      chats.push_back(std::make_shared<chat_client>(ioc, server, "chat:room", i, n, messages, size, window, each, offset,
                                                    totals, procs > 1 ? &source : nullptr));
      chats.back()->start();
    } else {
      subs.push_back(std::make_shared<subscriber>(ioc, t, dia, server, ch, totals, procs > 1 ? &source : nullptr));
      if (resume) subs.back()->keep_cursor();
      if (raw) subs.back()->raw_format();
      subs.back()->start();
    }
    ++mine;
    if (mine % 256 == 0 && connect_rate <= 0) ioc.poll();
  }
  run_until(ioc, [&] { return totals.connected >= mine; }, [&] { return totals.connected; }, std::chrono::seconds(10));
  if (is_helper && (chat || resume))
    return run_phased_helper(ioc, totals, helpers[0], subs, chats,
                             chat ? n * messages * mine : (2 * messages + missed) * mine);
  if (is_helper) return run_helper(ioc, totals, helpers[0], scenario, mine, messages);
  for (auto& h : helpers) totals.connected += read_connected(h);
  const double connect_s = static_cast<double>(now_ns() - t_connect) / 1e9;
  ioc.run_for(std::chrono::milliseconds(300));  // let subscriptions settle

  const auto server0 = pid ? sample_process(pid) : proc_sample{};
  const auto origin0 = origin.pid > 0 ? sample_process(origin.pid) : proc_sample{};
  const auto self0 = sample_process(0);
  double helpers_cpu = 0;
  json_record rec;
  rec.str("time", utc_now());
  rec.str("label", vm["label"].as<std::string>());
  rec.str("server", peer);
  rec.str("scenario", scenario);
  rec.str("transport", name(t));
  rec.str("format", format);
  rec.num("subscribers", double(n));
  rec.num("procs", double(procs));
  rec.num("connected", double(totals.connected));
  rec.num("errors", double(totals.errors));
  rec.num("connect_s", connect_s);
  rec.num("connect_rate", connect_rate);
  std::printf("| %s%s | %s | %s | %zu subs | connected %llu in %.2f s", peer.c_str(), raw ? " raw" : "",
              scenario.c_str(), name(t), n, static_cast<unsigned long long>(totals.connected), connect_s);

  if (scenario == "idle" || scenario == "connect")
    for (auto& h : helpers) collect_helper(h, totals, helpers_cpu);
  const bool all_connected = totals.connected == n;
  if (scenario == "idle") {
    rec.boolean("shared_channel", vm.count("shared-channel") > 0);
    const double per_conn = pid ? (double(server0.rss_bytes) - double(rss0)) / double(n) : 0.0;
    std::printf(" | server RSS +%.0f B/conn |\n", per_conn);
    rec.num("server_rss_bytes", double(server0.rss_bytes));
    rec.num("rss_per_conn_bytes", per_conn);
    rec.boolean("ok", all_connected);
    append_json(vm, rec);
    return all_connected ? 0 : 1;
  }
  if (scenario == "connect") {
    // The tool's CPU while connecting (its helpers' is not known for this phase).
    const double tool = 100.0 * (sample_process(0).cpu_seconds - self_connect.cpu_seconds) / connect_s;
    const double server_us = totals.connected ? (server0.cpu_seconds - server_connect.cpu_seconds) * 1e6 / double(totals.connected) : 0;
    std::printf(" | %.0f connections/s, server %.1f us CPU/connection | bench CPU %.0f%% |\n",
                double(totals.connected) / connect_s, server_us, tool);
    rec.num("connections_per_s", double(totals.connected) / connect_s);
    rec.num("server_cpu_us_per_connection", server_us);
    rec.num("bench_cpu_pct", tool);
    rec.num("server_rss_bytes", double(server0.rss_bytes));
    rec.boolean("ok", all_connected);
    append_json(vm, rec);
    return all_connected ? 0 : 1;
  }

  phased_run run{vm, ioc, totals, helpers, subs, chats, rec, dia, publish_to, n, messages, size, window, missed,
                 rate_asked, all_connected, pid, server0, self0, helpers_cpu};
  if (chat) return run_chat(run);
  if (resume) return run_resume(run);

  std::vector<std::string> channels;
  if (scenario == "channels")
    for (std::size_t i = 0; i < n; ++i) channels.push_back("bench:" + std::to_string(i));
  else
    channels.push_back("bench");
  const std::size_t expected_total = scenario == "channels" ? messages : messages * n;
  const std::size_t expected = scenario == "channels" ? (messages * mine + n - 1) / n : messages * mine;
  const auto bytes_in0 = totals.bytes_in, bytes_out0 = totals.bytes_out;
  bool published = false;
  auto pub = std::make_shared<publisher>(ioc, dia, publish_to, channels, messages, size, vm["window"].as<std::size_t>(),
                                         vm["rate"].as<double>(), [&] { published = true; });
  const auto t0 = now_ns();
  pub->start();
  std::int64_t t_last = t0;
  std::uint64_t seen = 0;
  run_until(ioc, [&] { return published && totals.delivered >= expected; },
            [&] {
              if (totals.delivered != seen) {
                seen = totals.delivered;
                t_last = now_ns();
              }
              return totals.delivered + pub->acknowledged();
            },
            std::chrono::seconds(5));
  for (auto& h : helpers) {
    std::int64_t helper_last = collect_helper(h, totals, helpers_cpu);
    t_last = std::max(t_last, helper_last);
  }
  const double secs = static_cast<double>(t_last - t0) / 1e9;
  const auto server1 = pid ? sample_process(pid) : proc_sample{};
  const auto origin1 = origin.pid > 0 ? sample_process(origin.pid) : proc_sample{};
  const auto self1 = sample_process(0);
  const double delivered = double(totals.delivered);
  const double per_msg_in = totals.delivered ? double(totals.bytes_in - bytes_in0) / delivered : 0;
  const double per_msg_out = totals.delivered ? double(totals.bytes_out - bytes_out0) / delivered : 0;
  const double rate = secs > 0 ? delivered / secs : 0.0;
  const double cpu_us = totals.delivered ? (server1.cpu_seconds - server0.cpu_seconds) * 1e6 / delivered : 0.0;
  // The tool's own CPU (this process and its helpers), in % of one core.
  const double bench_cpu = secs > 0 ? 100.0 * (self1.cpu_seconds - self0.cpu_seconds + helpers_cpu) / secs : 0.0;
  const bool ok = totals.lost == 0 && totals.duplicated == 0 && (totals.delivered == expected_total || totals.resets);
  std::printf(" | %zu msgs x %zu B | delivered %llu/%zu, lost %llu, dup %llu, resets %llu, errors %llu | %.0f msgs/s | p50 %.0f us, p99 %.0f us, "
              "p99.9 %.0f us, max %.0f us | %.1f B in + %.1f B out per msg | server %.2f us CPU/msg, RSS %.1f MiB | "
              "bench CPU %.0f%% |\n",
              messages, size, static_cast<unsigned long long>(totals.delivered), expected_total,
              static_cast<unsigned long long>(totals.lost), static_cast<unsigned long long>(totals.duplicated),
              static_cast<unsigned long long>(totals.resets), static_cast<unsigned long long>(totals.errors), rate, totals.latency.percentile_us(0.5),
              totals.latency.percentile_us(0.99), totals.latency.percentile_us(0.999), totals.latency.max_us(),
              per_msg_in, per_msg_out, cpu_us, double(server1.rss_bytes) / 1048576.0, bench_cpu);
  rec.num("messages", double(messages));
  rec.num("size", double(size));
  rec.num("rate", vm["rate"].as<double>());
  rec.num("window", double(vm["window"].as<std::size_t>()));
  rec.num("expected", double(expected_total));
  rec.num("delivered", delivered);
  rec.num("lost", double(totals.lost));
  rec.num("duplicated", double(totals.duplicated));
  rec.num("resets", double(totals.resets));
  rec.num("publish_failed", double(pub->failed()));
  rec.num("errors_end", double(totals.errors));
  rec.num("seconds", secs);
  rec.num("msgs_per_s", rate);
  rec.num("p50_us", totals.latency.percentile_us(0.5));
  rec.num("p99_us", totals.latency.percentile_us(0.99));
  rec.num("p999_us", totals.latency.percentile_us(0.999));
  rec.num("max_us", totals.latency.max_us());
  rec.num("bytes_in_per_msg", per_msg_in);
  rec.num("bytes_out_per_msg", per_msg_out);
  rec.num("server_cpu_us_per_msg", cpu_us);
  rec.num("server_rss_bytes", double(server1.rss_bytes));
  if (origin.pid > 0) {  // Pushpin's GRIP origin, apart from Pushpin's own processes
    rec.num("origin_cpu_us_per_msg", totals.delivered ? (origin1.cpu_seconds - origin0.cpu_seconds) * 1e6 / delivered : 0.0);
    rec.num("origin_rss_bytes", double(origin1.rss_bytes));
  }
  rec.num("bench_cpu_pct", bench_cpu);
  rec.boolean("ok", ok);
  append_json(vm, rec);
  for (auto& s : subs) s->stop();
  // Resets are the server saying so (history too short for a slow reader), not a loss.
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  try {
    return run(argc, argv);  // the servers it started are stopped on every way out
  } catch (const std::exception& e) {
    std::cerr << "herald-bench: " << e.what() << "\n";
    return 2;
  }
}
