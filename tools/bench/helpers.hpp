#pragma once
// herald-bench's helper processes (--procs): each runs its share of the subscribers and
// talks to the parent through two pipes; and the waits of the main loop.
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "clients.hpp"

namespace herald::bench {

// A helper process's pipe ends (seen from either side).
struct helper {
  pid_t pid;
  int from;  // read end
  int to;    // write end
};

// What a helper reports when asked ('Q') and when it finishes (then followed by its
// latency samples): its totals, and, summed over processes, everyone's.
struct helper_report {
  std::uint64_t delivered = 0, lost = 0, duplicated = 0, reordered = 0, resets = 0, bytes_in = 0, bytes_out = 0,
                errors = 0, connected = 0, caught_up = 0, published = 0, publish_failed = 0, samples = 0;
  std::int64_t last_delivery_ns = 0, last_caught_up_ns = 0;
  double cpu_seconds = 0;

  helper_report& operator+=(const helper_report& o) {
    delivered += o.delivered, lost += o.lost, duplicated += o.duplicated, reordered += o.reordered;
    resets += o.resets, bytes_in += o.bytes_in, bytes_out += o.bytes_out, errors += o.errors;
    connected += o.connected, caught_up += o.caught_up, published += o.published;
    publish_failed += o.publish_failed, samples += o.samples;
    last_delivery_ns = std::max(last_delivery_ns, o.last_delivery_ns);
    last_caught_up_ns = std::max(last_caught_up_ns, o.last_caught_up_ns);
    cpu_seconds += o.cpu_seconds;
    return *this;
  }
};

/// Runs the loop until `done()` or `idle_timeout` without progress in `progress()`.
void run_until(net::io_context& ioc, const std::function<bool()>& done, const std::function<std::uint64_t()>& progress,
               std::chrono::milliseconds idle_timeout);
/// A helper's first word: how many of its subscribers are connected.
std::uint64_t read_connected(const helper& h);
/// A command to a helper: one byte and a number, in one write (atomic on a pipe).
/// 1: finish and report; 'Q': report now; 'P': chat, start publishing at the monotonic
/// time `arg`; 'D': resume, close every subscriber; 'R': resume, reconnect every
/// subscriber from its cursor, caught up at message `arg`.
void command(const helper& h, char op, std::int64_t arg = 0);
/// This process's totals plus every helper's, asked now.
helper_report gather(const delivery_totals& own, const std::vector<helper>& helpers);
/// Tells a helper to finish, then adds its totals, samples and CPU time (since it
/// connected); returns its last delivery time.
std::int64_t collect_helper(helper& h, delivery_totals& totals, double& cpu_seconds);
/// A helper of the fan-out, channels, idle and connect scenarios: reports its
/// connections, keeps receiving until told to finish, then (once its share arrived or
/// nothing came for 2 s) sends its totals; returns its exit code.
int run_helper(net::io_context& ioc, delivery_totals& totals, const helper& parent, const std::string& scenario,
               std::size_t mine, std::size_t messages);
/// A helper of the chat and resume scenarios: obeys the parent's commands as they come.
int run_phased_helper(net::io_context& ioc, delivery_totals& totals, const helper& parent,
                      std::vector<std::shared_ptr<subscriber>>& subs, std::vector<std::shared_ptr<chat_client>>& chats,
                      std::uint64_t share);
/// Runs the loop until `done` holds for everyone's totals (this process's and the
/// helpers', asked every pass) or nothing moved for `idle`; `extra` adds the publisher's
/// progress. Returns everyone's totals.
helper_report wait_all(net::io_context& ioc, const delivery_totals& own, const std::vector<helper>& helpers,
                       const std::function<bool(const helper_report&)>& done, std::chrono::milliseconds idle,
                       const std::function<std::uint64_t()>& extra = {});

}  // namespace herald::bench
