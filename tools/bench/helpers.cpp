#include "helpers.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <cstring>
#include <stdexcept>

#include "driver.hpp"
#include "stats.hpp"

namespace herald::bench {

// Runs the loop until `done()` or `timeout` without progress in `progress()`.
void run_until(net::io_context& ioc, const std::function<bool()>& done, const std::function<std::uint64_t()>& progress,
               std::chrono::milliseconds idle_timeout) {
  auto last = progress();
  auto last_change = std::chrono::steady_clock::now();
  while (!done()) {
    if (g_stop) throw std::runtime_error("stopped by a signal");
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


static bool read_full(int fd, void* p, std::size_t n) {
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


static helper_report report_of(const delivery_totals& t) {
  helper_report r;
  r.delivered = t.delivered, r.lost = t.lost, r.duplicated = t.duplicated, r.reordered = t.reordered;
  r.resets = t.resets, r.bytes_in = t.bytes_in, r.bytes_out = t.bytes_out, r.errors = t.errors;
  r.connected = t.connected, r.caught_up = t.caught_up, r.published = t.published;
  r.publish_failed = t.publish_failed, r.samples = t.latency.samples().size();
  r.last_delivery_ns = t.last_delivery_ns, r.last_caught_up_ns = t.last_caught_up_ns;
  return r;
}

// A command to a helper: one byte and a number, in one write (atomic on a pipe).
// 1: finish and report; 'Q': report now; 'P': chat, start publishing at the monotonic
// time `arg`; 'D': resume, close every subscriber; 'R': resume, reconnect every
// subscriber from its cursor, caught up at message `arg`.
void command(const helper& h, char op, std::int64_t arg) {
  char b[9];
  b[0] = op;
  std::memcpy(b + 1, &arg, sizeof arg);
  if (write(h.to, b, sizeof b) != sizeof b) throw std::runtime_error("a helper process is gone");
}

static helper_report query(const helper& h) {
  command(h, 'Q');
  helper_report r;
  if (!read_full(h.from, &r, sizeof r)) throw std::runtime_error("a helper process is gone");
  return r;
}

// This process's totals plus every helper's, asked now.
helper_report gather(const delivery_totals& own, const std::vector<helper>& helpers) {
  auto r = report_of(own);
  for (const auto& h : helpers) r += query(h);
  return r;
}

// Tells a helper to finish, then adds its totals, samples and CPU time (since it
// connected); returns its last delivery time.
std::int64_t collect_helper(helper& h, delivery_totals& totals, double& cpu_seconds) {
  command(h, 1);
  helper_report r;
  if (!read_full(h.from, &r, sizeof r)) return 0;
  cpu_seconds += r.cpu_seconds;
  totals.delivered += r.delivered, totals.lost += r.lost, totals.duplicated += r.duplicated;
  totals.reordered += r.reordered, totals.resets += r.resets, totals.bytes_in += r.bytes_in;
  totals.bytes_out += r.bytes_out, totals.errors += r.errors, totals.caught_up += r.caught_up;
  totals.published += r.published, totals.publish_failed += r.publish_failed;
  totals.last_delivery_ns = std::max(totals.last_delivery_ns, r.last_delivery_ns);
  totals.last_caught_up_ns = std::max(totals.last_caught_up_ns, r.last_caught_up_ns);
  std::vector<std::int64_t> samples(r.samples);
  if (r.samples) read_full(h.from, samples.data(), samples.size() * sizeof(std::int64_t));
  totals.latency.merge(samples);
  waitpid(h.pid, nullptr, 0);
  return r.last_delivery_ns;
}

// A helper's last words: its report (with its CPU time) and its latency samples.
static int send_report(const helper& parent, const delivery_totals& totals, std::int64_t t_last, double cpu) {
  auto r = report_of(totals);
  r.last_delivery_ns = t_last;
  r.cpu_seconds = cpu;
  if (write(parent.to, &r, sizeof r) != sizeof r) return 1;
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

// A helper: reports its connections, keeps receiving until told to finish, then (once
// its share arrived or nothing came for 2 s) sends its totals and exits.
int run_helper(net::io_context& ioc, delivery_totals& totals, const helper& parent, const std::string& scenario,
               std::size_t mine, std::size_t messages) {
  std::uint64_t connected = totals.connected;
  if (write(parent.to, &connected, sizeof connected) != sizeof connected) return 1;
  const double cpu0 = sample_process(0).cpu_seconds;
  const int fd = parent.from;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const std::uint64_t share = scenario == "channels" ? 0 : messages * mine;
  std::int64_t t_last = 0;
  std::uint64_t seen = 0;
  char go[9];  // one command (see command())
  for (ssize_t r; (r = read(fd, go, sizeof go)) != sizeof go;) {
    if (r == 0 || g_stop) return 1;  // the parent is gone
    ioc.run_for(std::chrono::milliseconds(20));
    if (totals.delivered != seen) seen = totals.delivered, t_last = now_ns();
  }
  run_until(ioc, [&] { return share && totals.delivered >= share; },
            [&] {
              if (totals.delivered != seen) seen = totals.delivered, t_last = now_ns();
              return totals.delivered;
            },
            std::chrono::seconds(2));
  return send_report(parent, totals, t_last, sample_process(0).cpu_seconds - cpu0);
}

// A helper of the chat and resume scenarios: after reporting its connections it obeys
// the parent's commands (see command()) as they come, until told to finish; then, once
// its share arrived or nothing came for 2 s, it sends its totals and exits.
int run_phased_helper(net::io_context& ioc, delivery_totals& totals, const helper& parent,
                      std::vector<std::shared_ptr<subscriber>>& subs, std::vector<std::shared_ptr<chat_client>>& chats,
                      std::uint64_t share) {
  std::uint64_t connected = totals.connected;
  if (write(parent.to, &connected, sizeof connected) != sizeof connected) return 1;
  const double cpu0 = sample_process(0).cpu_seconds;
  auto guard = net::make_work_guard(ioc);
  net::posix::stream_descriptor pipe(ioc, ::dup(parent.from));
  char cmd[9];
  bool finish = false, gone = false;
  std::function<void()> next = [&] {
    net::async_read(pipe, net::buffer(cmd), [&](const boost::system::error_code& ec, std::size_t) {
      if (ec) {
        gone = true;
        return;
      }
      std::int64_t arg;
      std::memcpy(&arg, cmd + 1, sizeof arg);
      switch (cmd[0]) {
        case 'Q': {
          const auto r = report_of(totals);
          if (write(parent.to, &r, sizeof r) != sizeof r) gone = true;
          break;
        }
        case 'P':
          for (auto& c : chats) c->start_publishing(arg);
          break;
        case 'D':
          for (auto& s : subs) s->stop();
          break;
        case 'R':
          for (auto& s : subs) s->reconnect(static_cast<std::uint64_t>(arg));
          break;
        default:
          finish = true;
          return;
      }
      next();
    });
  };
  next();
  while (!finish) {
    if (gone || g_stop) return 1;  // the parent is gone
    ioc.run_for(std::chrono::milliseconds(50));
  }
  run_until(ioc, [&] { return totals.delivered >= share; }, [&] { return totals.delivered; }, std::chrono::seconds(2));
  return send_report(parent, totals, totals.last_delivery_ns, sample_process(0).cpu_seconds - cpu0);
}

// Runs the loop until `done` holds for everyone's totals (this process's and the
// helpers', asked every pass) or nothing moved for `idle`; `extra` adds the publisher's
// progress. Returns everyone's totals.
helper_report wait_all(net::io_context& ioc, const delivery_totals& own, const std::vector<helper>& helpers,
                       const std::function<bool(const helper_report&)>& done, std::chrono::milliseconds idle,
                       const std::function<std::uint64_t()>& extra) {
  auto progress = [&](const helper_report& r) {
    return r.delivered + r.connected + r.caught_up + r.published + r.publish_failed + r.errors + (extra ? extra() : 0);
  };
  auto all = gather(own, helpers);
  auto last = progress(all);
  auto last_change = std::chrono::steady_clock::now();
  while (!done(all)) {
    if (g_stop) throw std::runtime_error("stopped by a signal");
    ioc.run_for(std::chrono::milliseconds(20));
    all = gather(own, helpers);
    if (auto p = progress(all); p != last) {
      last = p;
      last_change = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_change > idle) {
      break;
    }
  }
  return all;
}

}  // namespace herald::bench
