#pragma once
// One event-loop thread: its io_context, its index in the hub, a quarter-second tick that
// drives heartbeats and long-poll deadlines (one timer per thread, none per connection),
// and write corking: connections that queued output during a pass of the loop are
// flushed together at its end, so a burst of publications leaves in one write each.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "util/exact_allocator.hpp"

namespace herald::transport {

namespace net = boost::asio;

/// Something that wants a call every tick (about once a second).
class tickable {
 public:
  /// `now_ms`: steady clock, milliseconds.
  virtual void on_tick(std::int64_t now_ms) = 0;
  /// The server is shutting down: tell the client to go (and come back elsewhere).
  virtual void drain() = 0;
  /// Told at the end of the drain window rather than spread over it (a stream's producer:
  /// its answer gets the whole window to finish).
  virtual bool drains_last() const noexcept { return false; }
  static constexpr std::uint32_t no_tick_index = UINT32_MAX;
  std::uint32_t tick_index_ = no_tick_index;  // position in the thread's list; owned by it
  bool drained_ = false;

 protected:
  ~tickable() = default;
};

/// Something with output to start writing once the current pass of the loop ends.
class flushable {
 public:
  virtual void flush() = 0;
  /// The hold (thread_context::hold) is over: write what is queued, held or not.
  virtual void flush_now() { flush(); }
  bool flush_pending_ = false;
  bool held_ = false;  // in the thread's hold list

 protected:
  ~flushable() = default;
};

class thread_context {
 public:
  explicit thread_context(unsigned index);
  /// Destroys the loop (and the connections its handlers own) while the lists they
  /// unregister from still exist.
  ~thread_context();

  net::io_context& ioc() noexcept { return *ioc_; }
  /// `h` made the completion handler of the one operation an idle connection keeps
  /// pending (its wait for readable): allocated at its own size (util::exact_allocator)
  /// rather than in a block Asio recycled from a larger operation, and bound to this
  /// loop's executor (one pointer, where the socket's polymorphic executor that the
  /// operation would otherwise keep a second copy of is several). Same thread, same order.
  template <class Handler>
  auto idle_wait(Handler&& h) {
    return net::bind_allocator(util::exact_allocator<void>(),
                               net::bind_executor(ioc_->get_executor(), std::forward<Handler>(h)));
  }
  unsigned index() const noexcept { return index_; }
  /// Seconds on a steady clock, updated each tick (coarse: for heartbeats and pings).
  std::int64_t now_s() const noexcept { return now_ms_ / 1000; }
  std::int64_t now_ms() const noexcept { return now_ms_; }
  /// A buffer for bytes read only to be discarded (close detection).
  std::array<char, 65536>& scratch() noexcept { return scratch_; }

  void add_tickable(tickable* t);
  void remove_tickable(tickable* t);

  /// Schedules `f->flush()` at the end of this pass (once, however often it is asked).
  /// A pass's flushes run `flush_batch` at a time, each batch its own handler, so that
  /// the loop's other work (a publisher's next request, a new connection) is not kept
  /// waiting behind the writes of a large fan-out.
  void want_flush(std::shared_ptr<flushable> f);
  static constexpr std::size_t flush_batch = 64;

  /// Write holding (--write-hold-ms): a connection whose peer has not acknowledged its
  /// last write yet may hold its next one up to this long, so that what arrives meanwhile
  /// leaves in the same segment (0: never held).
  void set_write_hold(std::chrono::milliseconds d) noexcept { write_hold_ = d; }
  std::chrono::milliseconds write_hold() const noexcept { return write_hold_; }
  /// Holds `f`: `f->flush_now()` runs when the hold ends (one timer for the thread).
  void hold(std::shared_ptr<flushable> f);

  /// Starts the tick timer; call once, before run().
  void start();
  void stop();
  /// Runs the loop on the calling thread until it is stopped. An exception that escapes
  /// a handler is logged, counted (herald_internal_errors_total) and the loop goes on.
  void run();

  /// Graceful drain: every connection is told to go, spread evenly over `window` so
  /// clients do not all reconnect to the other nodes at once. drained() turns true when
  /// no connection is left (safe to read from any thread).
  void start_drain(std::chrono::milliseconds window);
  bool drained() const noexcept { return drain_done_.load(std::memory_order_acquire); }
  /// Streaming connections (SSE, WebSocket, held polls) open on this thread; safe from
  /// any thread (for the drain's log lines).
  std::size_t streams() const noexcept { return streams_.load(std::memory_order_relaxed); }

 private:
  void schedule_tick();
  void flush_all();

  unsigned index_;
  std::unique_ptr<net::io_context> ioc_;
  std::optional<net::steady_timer> tick_timer_;
  std::int64_t now_ms_ = 0;
  void drain_step();

  std::vector<tickable*> tickables_;
  std::atomic<std::size_t> streams_{0};  // tickables_.size(), readable from other threads
  bool draining_ = false;
  std::int64_t drain_start_ms_ = 0;
  std::int64_t drain_window_ms_ = 0;
  std::size_t drain_total_ = 0, drain_sent_ = 0;
  std::atomic<bool> drain_done_{false};
  std::vector<std::shared_ptr<flushable>> to_flush_;
  std::vector<std::shared_ptr<flushable>> flushing_;  // the pass being flushed, from flush_pos_
  std::size_t flush_pos_ = 0;
  bool flush_posted_ = false;
  std::chrono::milliseconds write_hold_{0};
  std::vector<std::shared_ptr<flushable>> held_;
  std::optional<net::steady_timer> hold_timer_;
  bool hold_armed_ = false;
  bool stopped_ = false;
  std::array<char, 65536> scratch_{};
};

}  // namespace herald::transport
