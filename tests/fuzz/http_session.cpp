// Fuzz target: one client connection to the real server stack, over loopback TCP. The
// fixture builds, once per process, what server/server.cpp builds for one event-loop
// thread with the memory broker (namespaces, hub, broker, core::context, authorizer with
// an HS256 key, API handlers, shared_state, thread_context, listeners); each input is
// the byte stream of a client of transport::http_session and of whatever it hands the
// connection to (sse_session, longpoll_request, ws_session, the API handlers, the static
// files and the demo page), written in pieces from this thread while the server's loop
// runs here too (poll(): no second thread), then cut off.
//
// Two listeners share the core: "open" (no API key, no origin policy, no deflate, the
// built-in demo page) and "strict" (API key "fuzz-api-key", an Origin allow-list with
// credentials, permessage-deflate, a small web root, tighter limits and a low WebSocket
// command rate). Both use short timeouts and small byte limits, so the limits are
// reached: request timeout 1 s, --max-queued-bytes 16 KiB, bodies 4 KiB (1 KiB).
//
// Input: byte 0 = the reset point (bits 0-3), the client reads what the server writes
// (bit 4) or never does, a half close (shutdown of the client's write side) before the
// reset (bit 5), the strict listener (bit 6), publications during the run (bit 7);
// byte 1 = the pacing: piece sizes (bits 0-1), what happens between pieces (bits 2-3),
// a seed (bits 4-7). The rest is what the client sends: one or several pipelined
// requests, WebSocket frames after an upgrade. Reset points 0-11 cut the connection
// after 0/12..11/12 of the bytes (before the request ends), 12 right after the last byte,
// 13 after one to eight handlers of the server (the request being handled, its reply
// written), 14 once the server is quiet, 15 is a graceful close (end of stream, then
// close once read). The cut is abortive: SO_LINGER {1, 0}, then close, so the server
// sees a reset. Publications go
// straight into the broker port, on the channels the seeds subscribe to ("news",
// "chat:room", "a"), small ones and ones of 2 KiB (past the cap for a client that
// never reads). Every input gets at most about 20 ms of loop time before the cut, then
// the loop runs until the connection is gone.
//
// Properties:
//  - no crash, no undefined behaviour, no exception escaping an event-loop handler, no
//    SIGPIPE (the harness does not ignore it, as herald does not);
//  - the first bytes the server writes on a connection are an HTTP/1.1 status line,
//    never a 5xx with the memory broker (501, an unsupported transfer coding, aside), or,
//    for a client that opened with the HTTP/2 preface, an HTTP/2 SETTINGS frame (the
//    HTTP/2 path, h2_session and h2_stream, is fed the same way: seeds h2-* in the corpus);
//  - after the client is gone, every connection of the server ends within the server's
//    own bounds (request timeout, poll timeout, linger time): no open HTTP, SSE, poll or
//    WebSocket connection left, no subscription left in the hub, and exactly the file
//    descriptors open before the input: nothing leaks from one input into the next;
//  - memory stays bounded: the broker holds at most max_channels channels of bounded
//    history; LeakSanitizer at exit (and libFuzzer's -rss_limit_mb) check the rest;
//  - the server stays up: a fresh GET /healthz over a new socket answers 200, on the
//    first input and every 64th.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "api/api_handlers.hpp"
#include "auth/authorizer.hpp"
#include "broker/memory/memory_broker.hpp"
#include "core/hub.hpp"
#include "fuzz_check.hpp"
#include "metrics/metrics.hpp"
#include "transport/ip_counter.hpp"
#include "transport/listener.hpp"
#include "transport/shared_state.hpp"
#include "transport/thread_context.hpp"

namespace net = boost::asio;
namespace h = herald;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::string_view token_secret = "fuzz-http-session-hs256-secret-0123456789";
constexpr std::chrono::milliseconds input_budget{20};  // loop time before the cut
// The longest a connection may outlive its client: the request timeout (1 s) or a held
// poll's timeout (1 s) plus a tick (250 ms), or the linger time (2 s); with room.
constexpr std::chrono::milliseconds drain_bound{4000};
constexpr const char* published_channels[] = {"news", "chat:room", "a"};

// ---------------------------------------------------------------------------------------
// The server: what server::server builds for --threads 1 --broker memory.

struct fixture {
  h::core::namespace_table namespaces;
  h::transport::options open_opts, strict_opts;
  h::api::options open_api, strict_api;
  h::broker::memory_broker_options memory_opts;
  std::unique_ptr<h::transport::thread_context> thread;
  std::unique_ptr<h::core::hub> hub;
  std::unique_ptr<h::broker::memory_broker> broker;
  std::unique_ptr<h::core::context> core;
  std::unique_ptr<h::auth::authorizer> auth;
  std::unique_ptr<h::api::handlers> open_handlers, strict_handlers;
  std::unique_ptr<h::transport::ip_counter> open_connections_per_ip, open_polls_per_ip;
  std::unique_ptr<h::transport::ip_counter> strict_connections_per_ip, strict_polls_per_ip;
  std::unique_ptr<h::transport::shared_state> open_state, strict_state;
  std::shared_ptr<h::transport::listener> open_listener, strict_listener;
  sockaddr_in open_addr{}, strict_addr{};
  std::uint64_t inputs = 0;
  std::uint64_t slow_drains = 0;  // inputs whose connection outlived the fast drain

  fixture() {
    h::core::namespace_options defaults;
    defaults.history_size = 16;
    defaults.history_ttl = std::chrono::seconds(5);
    namespaces = h::core::namespace_table(defaults);
    auto chat = defaults;
    chat.client_publish = true;
    namespaces.set("chat", chat);
    auto priv = defaults;
    priv.anonymous = false;
    namespaces.set("private", priv);
    auto solo = defaults;
    solo.max_subscribers = 1;
    namespaces.set("solo", solo);

    for (auto* o : {&open_opts, &strict_opts}) {
      o->max_header_bytes = 4096;
      o->max_body_bytes = 4096;
      o->request_timeout = std::chrono::seconds(1);
      o->keepalive_timeout = std::chrono::seconds(1);
      o->sse_heartbeat = std::chrono::seconds(1);
      o->poll_timeout = std::chrono::seconds(1);
      o->poll_timeout_max = std::chrono::seconds(1);
      o->poll_limit = 10;
      o->poll_limit_max = 20;
      o->replay_limit = 50;
      o->max_queued_bytes = 16 * 1024;
      o->max_channels_per_connection = 4;
      o->ws_max_message = 4096;
      o->ws_ping_interval = std::chrono::seconds(1);
      o->ws_pong_timeout = std::chrono::seconds(1);
    }
    strict_opts.max_header_bytes = 1024;
    strict_opts.max_body_bytes = 1024;
    strict_opts.max_channels_per_connection = 2;
    strict_opts.ws_max_message = 1024;
    strict_opts.ws_deflate = true;
    strict_opts.allowed_origins = {"https://app.example", "null"};
    strict_opts.cors_credentials = true;
    strict_opts.max_connections_per_ip = 64;
    strict_opts.max_polls_per_ip = 1;
    strict_opts.ws_commands_per_second = 20;

    for (auto* a : {&open_api, &strict_api}) {
      a->max_data_bytes = 2048;
      a->max_broadcast_channels = 4;
      a->history_limit_max = 20;
      a->channels_list_max = 50;
    }
    strict_api.api_key = "fuzz-api-key";

    memory_opts.max_channels = 64;
    memory_opts.idle_ttl = std::chrono::seconds(1);

    h::auth::options auth_opts;
    auth_opts.keys.add_hs256("", std::string(token_secret));
    auth_opts.ticket_ttl = std::chrono::seconds(2);

    // As server::server, for one thread.
    thread = std::make_unique<h::transport::thread_context>(0);
    std::vector<h::core::hub::poster> posters;
    posters.push_back([&ioc = thread->ioc()](std::function<void()> fn) { net::post(ioc, std::move(fn)); });
    hub = std::make_unique<h::core::hub>(std::move(posters));
    broker = std::make_unique<h::broker::memory_broker>(
        namespaces, memory_opts, [hb = hub.get()](std::string_view c) { return hb->has_subscribers(c); });
    broker->set_listener(hub.get());
    hub->set_broker(broker.get());
    core = std::make_unique<h::core::context>(
        h::core::context{*hub, *broker, namespaces, open_opts.max_queued_bytes});
    auth = std::make_unique<h::auth::authorizer>(*core, std::move(auth_opts));
    open_handlers = std::make_unique<h::api::handlers>(*core, *auth, open_api);
    strict_api.web_root = make_web_root();
    strict_handlers = std::make_unique<h::api::handlers>(*core, *auth, strict_api);
    std::filesystem::remove_all(strict_api.web_root);  // read once, at start-up
    open_connections_per_ip = std::make_unique<h::transport::ip_counter>(open_opts.max_connections_per_ip);
    open_polls_per_ip = std::make_unique<h::transport::ip_counter>(open_opts.max_polls_per_ip);
    strict_connections_per_ip = std::make_unique<h::transport::ip_counter>(strict_opts.max_connections_per_ip);
    strict_polls_per_ip = std::make_unique<h::transport::ip_counter>(strict_opts.max_polls_per_ip);
    open_state = std::make_unique<h::transport::shared_state>(h::transport::shared_state{
        *core, *open_handlers, open_opts, open_api, *auth, *open_connections_per_ip, *open_polls_per_ip});
    strict_state = std::make_unique<h::transport::shared_state>(h::transport::shared_state{
        *core, *strict_handlers, strict_opts, strict_api, *auth, *strict_connections_per_ip, *strict_polls_per_ip});
    auto* b = broker.get();
    h::metrics::register_callback_gauge("herald_channels", "Channels held by the broker.",
                                        [b] { return static_cast<double>(b->stats().channels); });

    const net::ip::tcp::endpoint any(net::ip::make_address("127.0.0.1"), 0);
    open_listener = std::make_shared<h::transport::listener>(*thread, *open_state, any);
    strict_listener = std::make_shared<h::transport::listener>(*thread, *strict_state, any);
    open_addr = to_sockaddr(open_listener->local_endpoint());
    strict_addr = to_sockaddr(strict_listener->local_endpoint());

    h::core::hub::set_current_thread(0);  // this thread runs the loop
    open_listener->run();
    strict_listener->run();
    thread->start();
  }

  ~fixture() {
    // As server::~server: the loop (and the connections its handlers own) goes first.
    open_listener->stop();
    strict_listener->stop();
    open_listener.reset();
    strict_listener.reset();
    thread.reset();
    if (slow_drains) std::fprintf(stderr, "http_session: %llu inputs drained slowly (held polls, lingering closes)\n",
                                  static_cast<unsigned long long>(slow_drains));
  }

  static std::string make_web_root() {
    char tmpl[] = "/tmp/herald-fuzz-web-XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    FUZZ_CHECK(dir != nullptr, "the fixture can create its web root");
    const std::filesystem::path root(dir);
    std::filesystem::create_directories(root / "js");
    std::ofstream(root / "index.html") << "<!doctype html><title>fuzz</title><p>index</p>\n";
    std::ofstream(root / "js" / "herald.js") << "export const x = 1;\n";
    std::ofstream(root / "big.txt") << std::string(20000, 'b');
    return root.string();
  }

  static sockaddr_in to_sockaddr(const net::ip::tcp::endpoint& ep) {
    sockaddr_in a{};
    std::memcpy(&a, ep.data(), sizeof a);
    return a;
  }

  // Runs the loop through `run` (poll, poll_one, run_for); an exception out of a handler
  // is a property violation.
  template <class Run>
  std::size_t guarded(Run run) {
    try {
      return run(thread->ioc());
    } catch (const boost::system::system_error& e) {
      std::fprintf(stderr, "http_session: exception out of a handler: %s\n", e.what());
      FUZZ_CHECK(false, "no exception escapes an event-loop handler");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "http_session: exception out of a handler: %s\n", e.what());
      FUZZ_CHECK(false, "no exception escapes an event-loop handler");
    } catch (...) {
      FUZZ_CHECK(false, "no exception escapes an event-loop handler");
    }
    return 0;
  }

  // One pass of the loop: every handler that is ready, none waited for.
  std::size_t poll_once() {
    return guarded([](net::io_context& ioc) { return ioc.poll(); });
  }

  // One ready handler at most: resets can land between any two steps of the server.
  std::size_t poll_one() {
    return guarded([](net::io_context& ioc) { return ioc.poll_one(); });
  }

  void pump() {
    for (int i = 0; i < 256; ++i)
      if (poll_once() == 0) break;
  }

  std::size_t run_for(std::chrono::microseconds d) {
    return guarded([d](net::io_context& ioc) { return ioc.run_for(d); });
  }

  void publish(std::uint32_t r) {
    std::string data = (r & 8) ? "\"" + std::string(2000, 'p') + "\"" : "{\"n\":" + std::to_string(r >> 4) + "}";
    h::core::publish_request req{published_channels[r % 3], (r & 4) ? "tick" : "", std::move(data)};
    broker->publish(std::move(req), [](h::core::broker::publish_result) {});
  }
};

fixture& server() {
  static fixture f;
  return f;
}

// ---------------------------------------------------------------------------------------
// What must hold between inputs.

std::int64_t open_connections() {
  using g = h::metrics::gauge;
  return h::metrics::total(g::connections_http) + h::metrics::total(g::connections_sse) +
         h::metrics::total(g::connections_ws) + h::metrics::total(g::connections_poll);
}

int open_descriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

bool quiet(fixture& f, int fds_before) {
  return open_connections() == 0 && f.hub->counts().empty() && open_descriptors() == fds_before;
}

// Runs the loop until the server holds nothing of the connection (bounded).
void drain(fixture& f, int fds_before) {
  const auto start = clock_type::now();
  f.pump();
  bool slow = false;
  while (!quiet(f, fds_before)) {
    FUZZ_CHECK(clock_type::now() - start < drain_bound,
               "a connection ends within the server's own timeouts once its client is gone");
    if (clock_type::now() - start > input_budget) slow = true;
    f.run_for(std::chrono::milliseconds(1));
  }
  if (slow) ++f.slow_drains;
}

bool verbose();

// ---------------------------------------------------------------------------------------
// The client: a non-blocking socket on this thread.

class client {
 public:
  client(fixture& f, const sockaddr_in& to, bool small_window) : f_(f) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd_ >= 0, "the harness can open a socket");
    if (small_window) {
      // A small receive window: a client that does not read fills it soon, so the
      // server's own queue and its cap come into play.
      int rcv = 4096;
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    int r = ::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    FUZZ_CHECK(r == 0 || errno == EINPROGRESS, "loopback connect starts");
    // Loopback completes the handshake at once; let the listener accept it.
    for (int i = 0; i < 100 && !writable(); ++i) f_.run_for(std::chrono::microseconds(100));
    f_.pump();
  }
  ~client() { reset(); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  bool open() const noexcept { return fd_ >= 0; }

  /// Sends what the socket takes now; returns the bytes sent (0 when it is full or dead).
  std::size_t send_some(std::string_view bytes) {
    if (fd_ < 0 || bytes.empty()) return 0;
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  /// Reads what has arrived (keeping the first bytes, for the status line check).
  void read_available() {
    if (fd_ < 0 || eof_) return;
    char buf[16384];
    for (int i = 0; i < 64; ++i) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) eof_ = true;
      if (n <= 0) break;
      if (verbose()) std::fprintf(stderr, "%.*s", static_cast<int>(n), buf);
      if (head_.size() < 16) head_.append(buf, std::min<std::size_t>(16 - head_.size(), static_cast<std::size_t>(n)));
      received_ += static_cast<std::size_t>(n);
    }
    check_head();
  }

  void shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }

  /// The abortive close: the server gets a reset, whatever was unread is dropped.
  void reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }

  /// The graceful close (reset point 15).
  void close() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
  }

  bool eof() const noexcept { return eof_; }
  const std::string& head() const noexcept { return head_; }
  std::size_t received() const noexcept { return received_; }

 private:
  bool writable() const {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
  }

  void check_head() const {
    // HTTP/2 (a client that opened with the preface): the server's SETTINGS frame first,
    // on stream 0 (RFC 9113 3.4).
    if (head_.size() >= 9 && head_[3] == 0x04 && head_.compare(5, 4, std::string(4, '\0')) == 0) return;
    const std::size_t n = std::min<std::size_t>(head_.size(), 9);
    FUZZ_CHECK(std::string_view(head_).substr(0, n) == std::string_view("HTTP/1.1 ").substr(0, n) ||
                   (head_.size() < 9 && head_.size() >= 4 && head_[3] == 0x04),
               "the server's first bytes on a connection are an HTTP/1.1 status line or an HTTP/2 SETTINGS frame");
    // 501 is the client's unsupported transfer coding (RFC 9112 6.1), not a server fault.
    if (head_.size() >= 12 && std::string_view(head_).substr(9, 3) != "501")
      FUZZ_CHECK(head_[9] != '5', "no 5xx reply with the memory broker (501 aside)");
  }

  fixture& f_;
  int fd_ = -1;
  bool eof_ = false;
  std::string head_;
  std::size_t received_ = 0;
};

// A fresh GET /healthz answers 200 (the server is up and serving).
void check_health(fixture& f, const sockaddr_in& to) {
  const int fds = open_descriptors();
  {
    client c(f, to, false);
    constexpr std::string_view req = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    std::size_t sent = 0;
    const auto start = clock_type::now();
    while (!c.eof() && clock_type::now() - start < std::chrono::seconds(2)) {
      sent += c.send_some(req.substr(sent));
      f.run_for(std::chrono::microseconds(200));
      c.read_available();
    }
    FUZZ_CHECK(c.head().starts_with("HTTP/1.1 200 "), "a fresh GET /healthz answers 200");
  }
  drain(f, fds);
}

// HERALD_FUZZ_VERBOSE=1: print what the client receives and a line per input (to see
// what a seed reaches).
bool verbose() {
  static const bool on = std::getenv("HERALD_FUZZ_VERBOSE") != nullptr;
  return on;
}

std::uint32_t next(std::uint32_t& s) {
  s ^= s << 13, s ^= s >> 17, s ^= s << 5;  // xorshift32
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  auto& f = server();
  const unsigned reset_point = data[0] & 15;
  const bool reads = data[0] & 16;
  const bool half_close = data[0] & 32;
  const bool strict = data[0] & 64;
  const bool publishes = data[0] & 128;
  const unsigned sizes = data[1] & 3;
  const unsigned between = (data[1] >> 2) & 3;
  std::uint32_t seed = 0x9e3779b9u ^ (static_cast<std::uint32_t>(data[1]) << 8);
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  const auto& to = strict ? f.strict_addr : f.open_addr;

  if (f.inputs++ % 64 == 0) check_health(f, (f.inputs / 64) % 2 ? f.strict_addr : f.open_addr);
  if (f.inputs % 16 == 0) f.broker->sweep();

  const int fds_before = open_descriptors();
  FUZZ_CHECK(open_connections() == 0, "no connection is left from an earlier input");
  const auto start = clock_type::now();
  auto in_budget = [&] { return clock_type::now() - start < input_budget; };
  {
    client c(f, to, !reads);
    auto between_pieces = [&] {
      if (publishes)
        for (std::uint32_t k = next(seed) % 3; k-- > 0;) f.publish(next(seed));
      switch (between) {
        case 0: f.pump(); break;
        case 1:  // a few handlers only: the next piece (or the cut) lands mid-request
          for (std::uint32_t k = next(seed) % 4; k-- > 0;) f.poll_one();
          break;
        case 2: f.run_for(std::chrono::microseconds(200)); break;
        case 3: f.pump(); if (reads) c.read_available(); f.pump(); break;
      }
      if (reads) c.read_available();
    };

    // The bytes up to the reset point, in pieces.
    const std::size_t cut = reset_point < 12 ? bytes.size() * reset_point / 12 : bytes.size();
    std::size_t sent = 0;
    int stalls = 0;
    while (sent < cut && in_budget() && stalls < 8) {
      std::size_t piece = cut - sent;
      const std::uint32_t r = next(seed);
      if (sizes == 1) piece = std::min<std::size_t>(piece, 1 + r % 8);
      if (sizes == 2) piece = std::min<std::size_t>(piece, 1 + r % 64);
      if (sizes == 3) piece = std::min<std::size_t>(piece, 1 + r % 512);
      const std::size_t n = c.send_some(bytes.substr(sent, piece));
      sent += n;
      stalls = n == 0 ? stalls + 1 : 0;  // the server stopped reading: its window is full
      between_pieces();
    }

    if (reset_point == 13) {
      // The request is in; a few steps of the server: it is handled, its reply (or a
      // stream) being written.
      if (publishes) f.publish(next(seed));
      for (std::uint32_t k = 1 + next(seed) % 8; k-- > 0;) f.poll_one();
      if (reads) c.read_available();
    }
    if (reset_point >= 14) {
      // Until the server is quiet (or the budget is spent).
      for (int round = 0; round < 16 && in_budget(); ++round) {
        if (publishes && round < 6) f.publish(next(seed));
        f.pump();
        if (reads) c.read_available();
        if (!publishes || round >= 6)
          if (f.run_for(std::chrono::microseconds(200)) == 0) break;
      }
    }
    if (half_close) {
      c.shutdown_write();
      f.pump();
      if (reads) c.read_available();
    }
    if (verbose())
      std::fprintf(stderr, "\n[http_session: reset point %u, sent %zu of %zu bytes, received %zu]\n", reset_point,
                   sent, bytes.size(), c.received());
    if (reset_point == 15) {
      if (!half_close) c.shutdown_write();
      f.pump();
      c.read_available();
      c.close();
    } else {
      c.reset();
    }
  }
  drain(f, fds_before);
  FUZZ_CHECK(f.broker->stats().channels <= f.memory_opts.max_channels, "the broker holds at most max_channels");
  return 0;
}
