#include "server/server.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api/api_handlers.hpp"
#include "broker/memory/memory_broker.hpp"
#include "broker/redis/redis_broker.hpp"
#include "core/hub.hpp"
#include "metrics/metrics.hpp"
#include "transport/hooks.hpp"
#include "transport/ip_counter.hpp"
#include "transport/listener.hpp"
#include "transport/shared_state.hpp"
#include "transport/thread_context.hpp"
#include "transport/tls.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace herald::server {

namespace net = boost::asio;
namespace log = util::log;

struct server::timers {
  net::steady_timer sweep;
  net::steady_timer drain;
  net::signal_set signals;
  net::signal_set reload;  // SIGHUP
  explicit timers(net::io_context& ioc)
      : sweep(ioc), drain(ioc), signals(ioc, SIGINT, SIGTERM), reload(ioc, SIGHUP) {}
};

server::server(config::config cfg) : cfg_(std::move(cfg)) {
  std::vector<core::hub::poster> posters;
  for (unsigned i = 0; i < cfg_.threads; ++i) {
    threads_.push_back(std::make_unique<transport::thread_context>(i));
    threads_.back()->set_write_hold(cfg_.transport.write_hold);
    posters.push_back([&ioc = threads_.back()->ioc()](std::function<void()> fn) { net::post(ioc, std::move(fn)); });
  }
  hub_ = std::make_unique<core::hub>(std::move(posters));
  if (cfg_.broker == "memory") {
    auto m = std::make_unique<broker::memory_broker>(
        cfg_.namespaces, cfg_.memory, [h = hub_.get()](std::string_view c) { return h->has_subscribers(c); });
    memory_ = m.get();
    broker_ = std::move(m);
  } else {
    auto r = std::make_unique<broker::redis_broker>(cfg_.namespaces, cfg_.redis);
    redis_ = r.get();
    broker_ = std::move(r);
  }
  broker_->set_listener(hub_.get());
  hub_->set_broker(broker_.get());
  presence_ = std::make_unique<core::presence_registry>(cfg_.namespaces, broker_.get());
  // With Redis, presence is shared by every node (broker/redis/redis_presence.hpp), when
  // some namespace keeps it.
  bool keeps_presence = false;
  for (const auto& [name, o] : cfg_.namespaces.named()) keeps_presence |= o.presence || o.join_leave;
  if (redis_ && keeps_presence) presence_->set_mirror(redis_->share_presence(*presence_));
  streams_ = std::make_unique<core::stream_registry>(*hub_);
  // A stop sent to another node reaches this node's ingest through the broker.
  hub_->set_stop_handler([r = streams_.get()](const std::string& channel, const std::string& reason) {
    r->stop(channel, reason, [](core::broker::publish_result) {});
  });
  users_ = std::make_unique<core::user_registry>(*hub_, cfg_.threads);
  // A users-API command given to another node reaches this node's connections here.
  hub_->set_user_handler([u = users_.get()](const std::string& payload) {
    if (auto cmd = protocol::user_command_from_json(payload)) u->apply(*cmd, [](std::size_t) {});
  });
  core_ = std::make_unique<core::context>(core::context{*hub_, *broker_, cfg_.namespaces,
                                                        cfg_.transport.max_queued_bytes, streams_.get(),
                                                        presence_.get(), users_.get(), cfg_.api.history_limit_max});
  auth_ = std::make_unique<auth::authorizer>(*core_, cfg_.auth);
  api_ = std::make_unique<api::handlers>(*core_, *auth_, cfg_.api);
  connections_per_ip_ = std::make_unique<transport::ip_counter>(cfg_.transport.max_connections_per_ip);
  polls_per_ip_ = std::make_unique<transport::ip_counter>(cfg_.transport.max_polls_per_ip);
  // A certificate or key that does not load stops the start here (the message names the file).
  if (!cfg_.transport.tls_cert.empty())
    tls_ =
        std::make_unique<transport::tls_context>(cfg_.transport.tls_cert, cfg_.transport.tls_key, cfg_.transport.http2);
  shared_ = std::make_unique<transport::shared_state>(transport::shared_state{
      *core_, *api_, cfg_.transport, cfg_.api, *auth_, *connections_per_ip_, *polls_per_ip_, tls_.get()});
  if (cfg_.transport.hooks.any()) {
    std::vector<net::io_context*> loops;
    for (auto& t : threads_) loops.push_back(&t->ioc());
    hooks_ = std::make_unique<transport::hooks>(cfg_.transport.hooks, loops, cfg_.api.max_data_bytes);
    shared_->backend_hooks = hooks_.get();
  }
  timers_ = std::make_unique<timers>(threads_[0]->ioc());

  metrics::register_callback_gauge("herald_presence_connections",
                                   "Connections listed in presence (namespaces with presence or join_leave).",
                                   [p = presence_.get()] { return static_cast<double>(p->connections()); });
  auto* b = broker_.get();
  metrics::register_callback_gauges({{"herald_channels", "Channels held by the broker."},
                                     {"herald_history_messages", "Messages held in history."},
                                     {"herald_history_bytes", "Bytes held in history (approximate)."}},
                                    [b] {
                                      const auto s = b->stats();  // one read per scrape
                                      return std::vector<double>{static_cast<double>(s.channels),
                                                                 static_cast<double>(s.history_messages),
                                                                 static_cast<double>(s.history_bytes)};
                                    });
  metrics::register_callback_gauge("herald_ready", "1 when the broker is reachable (as GET /readyz), else 0.",
                                   [b] { return b->ready() ? 1.0 : 0.0; });
  metrics::register_callback_gauge("herald_draining", "1 from the first SIGTERM/SIGINT until the process ends.",
                                   [this] { return stops_.load() > 0 ? 1.0 : 0.0; });
  register_process_gauges();
  if (redis_)
    metrics::register_callback_gauge("herald_redis_subscriptions",
                                     "Pub/Sub channels with callback state (watched, or being unsubscribed).",
                                     [r = redis_] { return static_cast<double>(r->subscription_entries()); });
}

namespace {

// The standard process metrics of Prometheus client libraries, from /proc/self.
double open_fds() {
  std::error_code ec;
  double n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++n;
  return n;
}

double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

void server::register_process_gauges() {
  rlimit rl{};
  const double max_fds = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<double>(rl.rlim_cur) : 0;
  const double start_s = static_cast<double>(util::unix_ms()) / 1000.0;
  metrics::register_callback_gauge("process_open_fds", "Open file descriptors.", [] { return open_fds(); });
  metrics::register_callback_gauge("process_max_fds", "The open files limit (RLIMIT_NOFILE).",
                                   [max_fds] { return max_fds; });
  metrics::register_callback_gauge("process_resident_memory_bytes", "Resident memory in bytes.",
                                   [] { return resident_bytes(); });
  metrics::register_callback_gauge("process_start_time_seconds", "Start time of the process, unix seconds.",
                                   [start_s] { return start_s; });
}

server::~server() {
  // Connections die with their loops and unregister from the hub: loops go first.
  timers_.reset();
  listeners_.clear();
  if (redis_) redis_->stop();  // no more callbacks into the loops
  hooks_.reset();              // their sockets before the loops
  threads_.clear();
}

void server::start() {
  auto address = net::ip::make_address(cfg_.host);
  net::ip::tcp::endpoint ep(address, cfg_.port);
  // The lock before the listeners when the port is known, so that a second herald never
  // binds the port even briefly (the kernel would hand it connections meanwhile). With
  // port 0 the kernel draws a port no listener has, and the lock is taken once it is known.
  if (ep.port() != 0) {
    lock_.acquire(ep);
    listen_lock::probe(ep);
  }
  for (auto& t : threads_) {
    try {
      listeners_.push_back(std::make_shared<transport::listener>(*t, *shared_, ep));
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("cannot listen on " + cfg_.host + ":" + std::to_string(ep.port()) + ": " +
                               e.code().message());
    }
    ep = listeners_.front()->local_endpoint();  // port 0: every thread on the port drawn first
  }
  if (cfg_.port == 0) lock_.acquire(ep);
  log_start();
}

void server::log_start() const {
  // The effective configuration an operator checks first; secrets only as set/unset.
  std::string brokers = cfg_.broker;
  if (redis_) {
    brokers.clear();
    for (const auto& s : cfg_.redis.shards)
      brokers += (brokers.empty() ? "" : ",") +
                 (s.master.empty() ? s.host + ":" + std::to_string(s.port) : "sentinel:" + s.master);
  }
  const auto& t = cfg_.transport;
  const auto& d = cfg_.namespaces.for_channel("");
  log::info("start", {{"version", "0.1.0"},
                      {"listen", listen_lock::name(endpoint())},
                      {"threads", cfg_.threads},
                      {"broker", redis_ ? "redis" : "memory"},
                      {"redis", redis_ ? brokers : std::string("-")},
                      {"tls", tls_ ? "on" : "off"},
                      {"api_key", cfg_.api.api_key.empty() ? "unset" : "set"},
                      {"token_keys", cfg_.auth.keys.empty() ? "unset" : "set"},
                      {"history_size", d.history_size},
                      {"history_ttl_s", static_cast<long long>(d.history_ttl.count())},
                      {"max_channels", cfg_.memory.max_channels},
                      {"max_queued_bytes", t.max_queued_bytes},
                      {"max_body_bytes", t.max_body_bytes},
                      {"max_channels_per_connection", t.max_channels_per_connection},
                      {"max_connections_per_ip", t.max_connections_per_ip},
                      {"max_polls_per_ip", t.max_polls_per_ip},
                      {"ws_commands_per_second", t.ws_commands_per_second},
                      {"drain_ms", static_cast<long long>(cfg_.drain_window.count())}});
}

std::size_t server::streams() const {
  std::size_t n = 0;
  for (auto& t : threads_) n += t->streams();
  return n;
}

net::ip::tcp::endpoint server::endpoint() const { return listeners_.front()->local_endpoint(); }

void server::schedule_sweep() {
  timers_->sweep.expires_after(cfg_.sweep_interval);
  timers_->sweep.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (memory_) memory_->sweep();
    schedule_sweep();
  });
}

void server::run() {
  if (redis_) redis_->start();
  for (auto& l : listeners_) l->run();
  for (auto& t : threads_) t->start();
  schedule_sweep();
  wait_signal();
  wait_reload();
  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < threads_.size(); ++i)
    workers.emplace_back([this, i] {
      core::hub::set_current_thread(static_cast<int>(i));
      threads_[i]->run();
    });
  core::hub::set_current_thread(0);
  threads_[0]->run();
  for (auto& w : workers) w.join();
  log::flush_suppressed();
  log::info("stop", {{"internal_errors", metrics::total(metrics::counter::internal_errors)}});
}

void server::wait_signal() {
  timers_->signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("signal", {{"signal", sig == SIGTERM  ? "SIGTERM"
                                    : sig == SIGINT ? "SIGINT"
                                                    : "other"},
                         {"action", stops_.load() == 0 ? "drain" : "stop_now"}});
    stop();
    wait_signal();  // a second signal stops at once
  });
}

void server::wait_reload() {
  // SIGHUP (systemctl reload): the certificate and key are read again; handshakes from now
  // on use them, open connections keep theirs. A file that does not load keeps the old
  // pair (logged). Without TLS there is nothing to reload: logged, and nothing else.
  timers_->reload.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    log::info("signal", {{"signal", "SIGHUP"}, {"action", tls_ ? "reload_tls" : "none"}});
    if (!tls_) return wait_reload();
    auto error = tls_->reload();
    if (error.empty())
      log::info("tls_reload", {{"result", "ok"}, {"cert", cfg_.transport.tls_cert}});
    else
      log::error("tls_reload", {{"result", "kept_old"}, {"error", error}});
    wait_reload();
  });
}

void server::stop() {
  if (stops_.fetch_add(1) > 0) {
    net::post(threads_[0]->ioc(), [this] { halt("second_signal"); });
    return;
  }
  const auto window = cfg_.drain_window;
  lock_.release();  // no longer accepting: a successor may start on the address
  for (std::size_t i = 0; i < threads_.size(); ++i)
    net::post(threads_[i]->ioc(), [this, i, window] {
      listeners_[i]->stop();
      threads_[i]->start_drain(window);
    });
  net::post(threads_[0]->ioc(), [this, window] {
    timers_->sweep.cancel();
    // Connections get the window to go, plus a grace period for their last writes.
    drain_start_ms_ = util::steady_ms();
    drain_deadline_ms_ = drain_start_ms_ + window.count() + 2000;
    drain_streams_ = streams();
    log::info("drain_start", {{"connections", drain_streams_}, {"window_ms", static_cast<long long>(window.count())}});
    check_drained();
  });
}

void server::check_drained() {
  bool all = std::all_of(threads_.begin(), threads_.end(), [](auto& t) { return t->drained(); });
  if (all) return halt("drained");
  if (util::steady_ms() >= drain_deadline_ms_) return halt("deadline");
  timers_->drain.expires_after(std::chrono::milliseconds(100));
  timers_->drain.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) check_drained();
  });
}

void server::halt(const char* why) {
  if (!halted_) {
    halted_ = true;
    // Connections still open now are closed with their loops, without a goodbye.
    log::info("drain_end", {{"reason", why},
                            {"connections_at_start", drain_streams_},
                            {"left", streams()},
                            {"elapsed_ms", drain_start_ms_ ? util::steady_ms() - drain_start_ms_ : 0}});
  }
  timers_->drain.cancel();
  timers_->signals.cancel();
  timers_->reload.cancel();
  for (std::size_t i = 0; i < threads_.size(); ++i)
    net::post(threads_[i]->ioc(), [this, i] {
      listeners_[i]->stop();
      threads_[i]->stop();
      threads_[i]->ioc().stop();
    });
}

}  // namespace herald::server
