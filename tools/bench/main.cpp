// herald-bench: drives subscribers over ws, sse or long polling and a publisher against
// a herald it starts itself (or any server given by address), checks every delivery
// for loss, duplication and order, and reports delivered msgs/s, publish-to-receive
// latency, bytes on the wire per delivered message, server CPU per delivered message
// and server memory. Black box: it speaks HTTP and WebSocket only.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <thread>

#include "clients.hpp"

namespace po = boost::program_options;
using namespace herald::bench;

namespace {

struct server_process {
  pid_t pid = -1;
  int port = 0;
  ~server_process() {
    if (pid > 0) {
      ::kill(-pid, SIGKILL);  // a peer's process group (nginx workers)
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

int free_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

bool wait_listening(int port) {
  for (int i = 0; i < 300; ++i) {
    net::io_context ioc;
    tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
    if (!ec) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Starts a peer from bench/peers: "nchan" (nginx + Nchan) or "ws-node" (node ws server).
void start_peer(server_process& s, const std::string& peer) {
  s.port = free_port();
  const std::string port = std::to_string(s.port);
  std::vector<std::string> argv;
  std::vector<std::string> env;
  if (peer == "nchan") {
    char tmpl[] = "/tmp/herald-bench-nchan-XXXXXX";
    const std::string prefix = mkdtemp(tmpl);
    std::ifstream in("bench/peers/nchan.conf");
    std::stringstream conf;
    conf << in.rdbuf();
    std::string text = conf.str();
    for (auto [k, v] : {std::pair<std::string, std::string>{"@PORT@", port}, {"@PREFIX@", prefix}})
      for (auto p = text.find(k); p != std::string::npos; p = text.find(k)) text.replace(p, k.size(), v);
    std::ofstream(prefix + "/nginx.conf") << text;
    argv = {"/usr/sbin/nginx", "-c", prefix + "/nginx.conf", "-p", prefix};
  } else if (peer == "ws-node") {
    argv = {"/usr/bin/env", "node", "bench/peers/ws-server.mjs", port};
  } else {
    throw std::invalid_argument("unknown peer " + peer + " (herald, nchan, ws-node)");
  }
  s.pid = fork();
  if (s.pid == 0) {
    setpgid(0, 0);  // its own group: the workers are stopped with it
    std::vector<char*> a;
    for (auto& x : argv) a.push_back(x.data());
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  if (!wait_listening(s.port)) throw std::runtime_error(peer + " did not start listening");
}

// Starts `binary --listen 127.0.0.1:0 args...` and reads the port it reports.
void start_server(server_process& s, const std::string& binary, const std::vector<std::string>& args) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  s.pid = fork();
  if (s.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    std::vector<std::string> all{binary, "--listen", "127.0.0.1:0"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  auto p = line.find("127.0.0.1:");
  if (p == std::string::npos) throw std::runtime_error("server did not report its port: " + line);
  s.port = std::stoi(line.substr(p + 10));
}

// Runs the loop until `done()` or `timeout` without progress in `progress()`.
void run_until(net::io_context& ioc, const std::function<bool()>& done, const std::function<std::uint64_t()>& progress,
               std::chrono::milliseconds idle_timeout) {
  auto last = progress();
  auto last_change = std::chrono::steady_clock::now();
  while (!done()) {
    ioc.run_for(std::chrono::milliseconds(20));
    auto p = progress();
    if (p != last) {
      last = p;
      last_change = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_change > idle_timeout) {
      break;
    }
  }
}

// A helper process's pipe ends (seen from either side).
struct helper {
  pid_t pid;
  int from;  // read end
  int to;    // write end
};

bool read_full(int fd, void* p, std::size_t n) {
  auto* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::uint64_t read_connected(const helper& h) {
  std::uint64_t v = 0;
  read_full(h.from, &v, sizeof v);
  return v;
}

// Tells a helper to finish, then adds its totals and samples; returns its last delivery time.
std::int64_t collect_helper(helper& h, delivery_totals& totals) {
  char go = 1;
  if (write(h.to, &go, 1) != 1) return 0;
  std::uint64_t f[8] = {};
  std::int64_t last = 0;
  if (!read_full(h.from, f, sizeof f) || !read_full(h.from, &last, sizeof last)) return 0;
  totals.delivered += f[0], totals.lost += f[1], totals.duplicated += f[2], totals.resets += f[3];
  totals.bytes_in += f[4], totals.bytes_out += f[5], totals.errors += f[6];
  std::vector<std::int64_t> samples(f[7]);
  if (f[7]) read_full(h.from, samples.data(), samples.size() * sizeof(std::int64_t));
  totals.latency.merge(samples);
  waitpid(h.pid, nullptr, 0);
  return last;
}

// A helper: reports its connections, keeps receiving until told to finish, then (once
// its share arrived or nothing came for 2 s) sends its totals and exits.
int run_helper(net::io_context& ioc, delivery_totals& totals, const helper& parent, const std::string& scenario,
               std::size_t mine, std::size_t messages) {
  std::uint64_t connected = totals.connected;
  if (write(parent.to, &connected, sizeof connected) != sizeof connected) return 1;
  const int fd = parent.from;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const std::uint64_t share = scenario == "channels" ? 0 : messages * mine;
  std::int64_t t_last = 0;
  std::uint64_t seen = 0;
  char go;
  while (read(fd, &go, 1) != 1) {
    ioc.run_for(std::chrono::milliseconds(20));
    if (totals.delivered != seen) seen = totals.delivered, t_last = now_ns();
  }
  run_until(ioc, [&] { return share && totals.delivered >= share; },
            [&] {
              if (totals.delivered != seen) seen = totals.delivered, t_last = now_ns();
              return totals.delivered;
            },
            std::chrono::seconds(2));
  std::uint64_t f[8] = {totals.delivered, totals.lost,      totals.duplicated, totals.resets,
                        totals.bytes_in,  totals.bytes_out, totals.errors,     totals.latency.samples().size()};
  if (write(parent.to, f, sizeof f) != sizeof f || write(parent.to, &t_last, sizeof t_last) != sizeof t_last) return 1;
  const auto& s = totals.latency.samples();
  const auto* p = reinterpret_cast<const char*>(s.data());
  std::size_t left = s.size() * sizeof(std::int64_t);
  while (left) {
    ssize_t w = write(parent.to, p, left);
    if (w <= 0) return 1;
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description d("herald-bench options");
  // clang-format off
  d.add_options()
    ("help,h", "print this help")
    ("server", po::value<std::string>()->default_value("build/src/herald"), "herald binary to start (ignored with --connect)")
    ("server-arg", po::value<std::vector<std::string>>(), "extra argument for the started server (repeatable)")
    ("connect", po::value<std::string>(), "HOST:PORT of a running server instead of starting one")
    ("server-pid", po::value<int>()->default_value(0), "PID of the --connect server, for CPU and memory figures")
    ("scenario", po::value<std::string>()->default_value("fanout"), "fanout | channels | idle | connect")
    ("transport", po::value<std::string>()->default_value("ws"), "ws | sse | poll")
    ("subscribers", po::value<std::size_t>()->default_value(1000), "subscriber connections (at most 15000 per process)")
    ("procs", po::value<std::size_t>()->default_value(1), "processes sharing the subscribers, each from its own 127.0.0.x source address")
    ("messages", po::value<std::size_t>()->default_value(100), "messages to publish")
    ("size", po::value<std::size_t>()->default_value(100), "bytes of each message's data")
    ("rate", po::value<double>()->default_value(0), "publishes per second (0: as fast as the window allows)")
    ("window", po::value<std::size_t>()->default_value(1), "publish requests in flight (1: one message per write)")
    ("peer", po::value<std::string>()->default_value("herald"), "herald | nchan | ws-node (configs in bench/peers; run from the repository root)");
  // clang-format on
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
              << "\nPrints one Markdown table row per run; docs/benchmarks.md has the standard set.\n";
    return 0;
  }
  const auto scenario = vm["scenario"].as<std::string>();
  const auto t = parse_transport(vm["transport"].as<std::string>());
  const auto n = vm["subscribers"].as<std::size_t>();
  const auto messages = vm["messages"].as<std::size_t>();
  const auto procs = std::max<std::size_t>(1, vm["procs"].as<std::size_t>());
  if (n / procs > 15000 || procs > 64) {
    std::cerr << "herald-bench: at most 15000 subscribers per process (the open-file limit is 20000): use --procs\n";
    return 2;
  }

  server_process srv;
  tcp::endpoint server;
  int pid = vm["server-pid"].as<int>();
  const auto peer = vm["peer"].as<std::string>();
  const dialect dia = peer == "herald" ? dialect::herald : dialect::peer;
  if (peer != "herald") {
    if (peer == "ws-node" && t != transport::ws) {
      std::cerr << "herald-bench: the ws-node peer serves WebSocket only\n";
      return 2;
    }
    start_peer(srv, peer);
    pid = srv.pid;
    server = {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port)};
  } else if (vm.count("connect")) {
    auto hp = vm["connect"].as<std::string>();
    auto colon = hp.rfind(':');
    server = {net::ip::make_address(hp.substr(0, colon)), static_cast<unsigned short>(std::stoi(hp.substr(colon + 1)))};
  } else {
    std::vector<std::string> args;
    if (vm.count("server-arg")) args = vm["server-arg"].as<std::vector<std::string>>();
    start_server(srv, vm["server"].as<std::string>(), args);
    pid = srv.pid;
    server = {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port)};
  }

  const auto rss0 = pid ? sample_process(pid).rss_bytes : 0;
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
      srv.pid = -1;  // the server belongs to the parent
      close(up[0]);
      close(down[1]);
      k_self = k;
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
  std::size_t mine = 0;
  const tcp::endpoint source(net::ip::make_address_v4(0x7f000001u + static_cast<unsigned>(k_self)), 0);
  for (std::size_t i = k_self; i < n; i += procs) {
    std::string ch = scenario == "channels" || scenario == "idle" ? "bench:" + std::to_string(i) : "bench";
    subs.push_back(std::make_shared<subscriber>(ioc, t, dia, server, ch, totals, procs > 1 ? &source : nullptr));
    subs.back()->start();
    ++mine;
    if (mine % 256 == 0) ioc.poll();
  }
  run_until(ioc, [&] { return totals.connected >= mine; }, [&] { return totals.connected; }, std::chrono::seconds(10));
  if (is_helper) return run_helper(ioc, totals, helpers[0], scenario, mine, messages);
  for (auto& h : helpers) totals.connected += read_connected(h);
  const double connect_s = static_cast<double>(now_ns() - t_connect) / 1e9;
  ioc.run_for(std::chrono::milliseconds(300));  // let subscriptions settle

  const auto server0 = pid ? sample_process(pid) : proc_sample{};
  const auto self0 = sample_process(0);
  std::printf("| %s | %s | %s | %zu subs | connected %llu in %.2f s",
              peer.c_str(), scenario.c_str(), name(t), n,
              static_cast<unsigned long long>(totals.connected), connect_s);

  if (scenario == "idle" || scenario == "connect")
    for (auto& h : helpers) collect_helper(h, totals);
  if (scenario == "idle") {
    std::printf(" | server RSS +%.0f B/conn |\n", pid ? double(server0.rss_bytes - rss0) / double(n) : 0.0);
    return totals.connected == n ? 0 : 1;
  }
  if (scenario == "connect") {
    std::printf(" | %.0f connections/s |\n", double(totals.connected) / connect_s);
    return totals.connected == n ? 0 : 1;
  }

  std::vector<std::string> channels;
  if (scenario == "channels")
    for (std::size_t i = 0; i < n; ++i) channels.push_back("bench:" + std::to_string(i));
  else
    channels.push_back("bench");
  const std::size_t expected_total = scenario == "channels" ? messages : messages * n;
  const std::size_t expected = scenario == "channels" ? (messages * mine + n - 1) / n : messages * mine;
  const auto bytes_in0 = totals.bytes_in, bytes_out0 = totals.bytes_out;
  bool published = false;
  auto pub = std::make_shared<publisher>(ioc, dia, server, channels, messages, vm["size"].as<std::size_t>(),
                                         vm["window"].as<std::size_t>(), vm["rate"].as<double>(),
                                         [&] { published = true; });
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
    std::int64_t helper_last = collect_helper(h, totals);
    t_last = std::max(t_last, helper_last);
  }
  const double secs = static_cast<double>(t_last - t0) / 1e9;
  const auto server1 = pid ? sample_process(pid) : proc_sample{};
  const auto self1 = sample_process(0);
  const double per_msg_in = totals.delivered ? double(totals.bytes_in - bytes_in0) / double(totals.delivered) : 0;
  const double per_msg_out = totals.delivered ? double(totals.bytes_out - bytes_out0) / double(totals.delivered) : 0;
  std::printf(" | %zu msgs x %zu B | delivered %llu/%zu, lost %llu, dup %llu, resets %llu | %.0f msgs/s | p50 %.0f us, p99 %.0f us, "
              "p99.9 %.0f us, max %.0f us | %.1f B in + %.1f B out per msg | server %.2f us CPU/msg, RSS %.1f MiB | "
              "bench CPU %.0f%% |\n",
              messages, vm["size"].as<std::size_t>(), static_cast<unsigned long long>(totals.delivered), expected_total,
              static_cast<unsigned long long>(totals.lost), static_cast<unsigned long long>(totals.duplicated),
              static_cast<unsigned long long>(totals.resets),
              secs > 0 ? double(totals.delivered) / secs : 0.0, totals.latency.percentile_us(0.5),
              totals.latency.percentile_us(0.99), totals.latency.percentile_us(0.999), totals.latency.max_us(),
              per_msg_in, per_msg_out,
              totals.delivered ? (server1.cpu_seconds - server0.cpu_seconds) * 1e6 / double(totals.delivered) : 0.0,
              double(server1.rss_bytes) / 1048576.0,
              secs > 0 ? 100.0 * (self1.cpu_seconds - self0.cpu_seconds) / secs : 0.0);
  for (auto& s : subs) s->stop();
  // Resets are the server saying so (history too short for a slow reader), not a loss.
  return totals.lost == 0 && totals.duplicated == 0 && (totals.delivered == expected_total || totals.resets) ? 0 : 1;
}
