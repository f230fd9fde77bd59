#pragma once
// Event-loop threads simulated in one test thread: posts queue up per "thread" and run
// when the test says so, which makes interleavings explicit.
#include <deque>
#include <functional>
#include <vector>

#include "core/hub.hpp"

namespace herald::test {

struct manual_threads {
  std::vector<std::deque<std::function<void()>>> queues;

  explicit manual_threads(unsigned n) : queues(n) {}

  std::vector<core::hub::poster> posters() {
    std::vector<core::hub::poster> out;
    for (unsigned i = 0; i < queues.size(); ++i)
      out.push_back([this, i](std::function<void()> fn) { queues[i].push_back(std::move(fn)); });
    return out;
  }
  /// Runs thread t's queue until empty (including what the handlers post).
  void run(unsigned t) {
    core::hub::set_current_thread(static_cast<int>(t));
    while (!queues[t].empty()) {
      auto fn = std::move(queues[t].front());
      queues[t].pop_front();
      fn();
    }
  }
  void run_all() {
    for (unsigned t = 0; t < queues.size(); ++t) run(t);
  }
};

}  // namespace herald::test
