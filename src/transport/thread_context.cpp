#include "transport/thread_context.hpp"

#include <algorithm>
#include <cmath>

#include <exception>
#include <typeinfo>

#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include "metrics/metrics.hpp"
#include "util/log.hpp"

namespace herald::transport {

namespace {
std::int64_t steady_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

// Not the single-thread hint (1), although only this thread runs the loop: with it, Asio
// queues a post made from the loop's own thread in a private queue that joins the shared
// one only when the current handler returns, so a publication posted by this thread (its
// offset assigned first) could run after a later one posted meanwhile by another thread.
// The hub's per-channel order rests on posts running in the order they were made
// (core/hub.hpp); out of order, a live subscriber saw a gap, and when its thread's backlog
// was longer than the history, a reset (issue 11, finding 12).
constexpr int loop_concurrency_hint = BOOST_ASIO_CONCURRENCY_HINT_SAFE;

thread_context::thread_context(unsigned index)
    : index_(index), ioc_(std::make_unique<net::io_context>(loop_concurrency_hint)), now_ms_(steady_millis()) {
  tick_timer_.emplace(*ioc_);
}

thread_context::~thread_context() {
  tick_timer_.reset();
  hold_timer_.reset();  // timers before their io_context
  to_flush_.clear();
  flushing_.clear();
  held_.clear();
  ioc_.reset();
}

void thread_context::add_tickable(tickable* t) {
  t->tick_index_ = static_cast<std::uint32_t>(tickables_.size());
  tickables_.push_back(t);
  streams_.store(tickables_.size(), std::memory_order_relaxed);
}

void thread_context::remove_tickable(tickable* t) {
  if (t->tick_index_ >= tickables_.size() || tickables_[t->tick_index_] != t) return;
  tickable* last = tickables_.back();
  tickables_[t->tick_index_] = last;
  last->tick_index_ = t->tick_index_;
  tickables_.pop_back();
  t->tick_index_ = tickable::no_tick_index;
  streams_.store(tickables_.size(), std::memory_order_relaxed);
}

void thread_context::want_flush(std::shared_ptr<flushable> f) {
  if (f->flush_pending_) return;
  f->flush_pending_ = true;
  to_flush_.push_back(std::move(f));
  if (!flush_posted_) {
    flush_posted_ = true;
    net::post(*ioc_, [this] { flush_all(); });
  }
}

void thread_context::flush_all() {
  flush_posted_ = false;
  if (flush_pos_ == flushing_.size()) {  // the last pass is done: take the next one
    flushing_.clear();
    flush_pos_ = 0;
    flushing_.swap(to_flush_);  // both keep their capacity for the next passes
  }
  const std::size_t end = std::min(flushing_.size(), flush_pos_ + flush_batch);
  while (flush_pos_ < end) {
    auto f = std::move(flushing_[flush_pos_++]);
    f->flush_pending_ = false;
    f->flush();  // may want_flush() again: it joins to_flush_, after this pass
  }
  if ((flush_pos_ < flushing_.size() || !to_flush_.empty()) && !flush_posted_) {
    flush_posted_ = true;
    net::post(*ioc_, [this] { flush_all(); });  // behind what the loop has queued meanwhile
  }
}

void thread_context::hold(std::shared_ptr<flushable> f) {
  f->held_ = true;
  held_.push_back(std::move(f));
  if (hold_armed_) return;
  hold_armed_ = true;
  if (!hold_timer_) hold_timer_.emplace(*ioc_);
  hold_timer_->expires_after(write_hold_);
  hold_timer_->async_wait([this](const boost::system::error_code& ec) {
    hold_armed_ = false;
    if (ec) return;
    auto list = std::move(held_);
    held_.clear();
    for (auto& f : list) {
      f->held_ = false;
      f->flush_now();
    }
  });
}

void thread_context::start() { schedule_tick(); }

void thread_context::run() {
  // The last line of defence, not the error handling. A handler must not throw: every
  // call that can fail on a dead socket or on client input takes an error_code (or
  // returns a refusal) at its call site, where the connection can be closed properly.
  // An exception reaching this point is a bug; the handler that threw may have left
  // its connection half done (it is then closed when its last reference goes, or at
  // the next timeout). Aborting would take every other connection of the process with
  // it, and one client could do that at will (issue 11, finding 1); so: log it with
  // what we know, count it, and run the loop again (io_context::run() resumes after an
  // exception). It also stays visible: herald_internal_errors_total should be 0.
  // Rate-limited per message: a client that can trigger the bug can also repeat it.
  using util::log::field;
  for (;;) {
    try {
      ioc_->run();
      return;  // stopped, or out of work
    } catch (const boost::system::system_error& e) {
      metrics::add(metrics::counter::internal_errors);
      util::log::throttled(
          util::log::level::error, "internal_error", field("what", e.what()),
          {{"thread", index_}, {"type", "boost::system::system_error"}, {"code", e.code().to_string()}});
    } catch (const std::exception& e) {
      metrics::add(metrics::counter::internal_errors);
      util::log::throttled(util::log::level::error, "internal_error", field("what", e.what()),
                           {{"thread", index_}, {"type", typeid(e).name()}});
    } catch (...) {
      metrics::add(metrics::counter::internal_errors);
      util::log::throttled(util::log::level::error, "internal_error", field("what", "unknown exception"),
                           {{"thread", index_}});
    }
  }
}

void thread_context::start_drain(std::chrono::milliseconds window) {
  if (draining_) return;
  draining_ = true;
  drain_start_ms_ = steady_millis();
  drain_window_ms_ = std::max<std::int64_t>(window.count(), 1);
  drain_total_ = static_cast<std::size_t>(
      std::count_if(tickables_.begin(), tickables_.end(), [](const tickable* t) { return !t->drains_last(); }));
  drain_step();
}

void thread_context::drain_step() {
  const double done = std::min(1.0, static_cast<double>(steady_millis() - drain_start_ms_) / drain_window_ms_);
  const auto target = static_cast<std::size_t>(std::ceil(done * static_cast<double>(drain_total_)));
  // drain() may remove entries: walk backwards, skipping the ones already told.
  for (std::size_t i = tickables_.size(); i-- > 0 && drain_sent_ < target;) {
    if (i >= tickables_.size() || tickables_[i]->drained_ || tickables_[i]->drains_last()) continue;
    tickables_[i]->drained_ = true;
    ++drain_sent_;
    tickables_[i]->drain();
  }
  if (done >= 1.0)  // late arrivals (none: listeners are closed) and stragglers
    for (std::size_t i = tickables_.size(); i-- > 0;)
      if (i < tickables_.size() && !tickables_[i]->drained_) {
        tickables_[i]->drained_ = true;
        tickables_[i]->drain();
      }
  if (tickables_.empty()) drain_done_.store(true, std::memory_order_release);
}

void thread_context::stop() {
  stopped_ = true;
  tick_timer_->cancel();
}

void thread_context::schedule_tick() {
  tick_timer_->expires_after(std::chrono::milliseconds(250));
  tick_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    now_ms_ = steady_millis();
    // on_tick may remove the current entry (swap with the last): walk backwards.
    for (std::size_t i = tickables_.size(); i-- > 0;)
      if (i < tickables_.size()) tickables_[i]->on_tick(now_ms_);
    if (draining_) drain_step();
    schedule_tick();
  });
}

}  // namespace herald::transport
