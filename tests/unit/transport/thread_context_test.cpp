// The event-loop threads keep the hub's promise: a thread runs the posts it receives in
// the order they were made, its own posts included, so one channel's publications reach
// its subscribers in offset order even when several threads publish into it.
#include "transport/thread_context.hpp"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <future>
#include <thread>

#include "broker/memory/memory_broker.hpp"
#include "core/hub.hpp"

using namespace herald;

namespace {

struct recorder final : core::subscriber {
  std::vector<std::uint64_t> offsets;
  void deliver(const protocol::message_ptr& m) override { offsets.push_back(m->offset()); }
  core::transport kind() const noexcept override { return core::transport::ws; }
  void resync_hint(const std::string&) override {}
};

}  // namespace

TEST(ThreadContext, PostsFromTheLoopAndFromOtherThreadsRunInTheOrderMade) {
  constexpr int loops = 2, per_handler = 200, handlers = 25;
  std::vector<std::unique_ptr<transport::thread_context>> tcs;
  std::vector<core::hub::poster> posters;
  for (int i = 0; i < loops; ++i) {
    tcs.push_back(std::make_unique<transport::thread_context>(i));
    posters.push_back([&ioc = tcs.back()->ioc()](std::function<void()> fn) { boost::asio::post(ioc, std::move(fn)); });
  }
  core::hub hub(std::move(posters));
  core::namespace_table ns;
  broker::memory_broker broker(ns, {}, [&](std::string_view c) { return hub.has_subscribers(c); });
  broker.set_listener(&hub);
  hub.set_broker(&broker);

  std::vector<std::thread> threads;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  for (int i = 0; i < loops; ++i) {
    work.emplace_back(tcs[i]->ioc().get_executor());
    threads.emplace_back([&, i] {
      core::hub::set_current_thread(i);
      tcs[i]->ioc().run();
    });
  }
  auto on = [&](int t, std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(tcs[t]->ioc(), [&] { fn(); done.set_value(); });
    done.get_future().wait();
  };

  recorder r;
  on(1, [&] { hub.subscribe(1, "room", &r); });
  // Both loops publish bursts from inside their handlers, as WebSocket publishes do: the
  // deliveries loop 1 posts to itself interleave with those loop 0 posts to it.
  for (int h = 0; h < handlers; ++h)
    for (int t = 0; t < loops; ++t)
      boost::asio::post(tcs[t]->ioc(), [&] {
        for (int k = 0; k < per_handler; ++k) broker.publish({"room", "", "0"}, [](auto) {});
      });
  const std::size_t total = std::size_t(loops) * handlers * per_handler;
  for (int spin = 0; spin < 2000; ++spin) {
    std::size_t n = 0;
    on(1, [&] { n = r.offsets.size(); });
    if (n >= total) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  on(1, [&] { hub.unsubscribe(1, "room", &r, 0); });
  work.clear();
  for (auto& th : threads) th.join();

  ASSERT_EQ(r.offsets.size(), total);
  std::size_t out_of_order = 0;
  for (std::size_t i = 0; i < r.offsets.size(); ++i) out_of_order += r.offsets[i] != i + 1;
  EXPECT_EQ(out_of_order, 0u) << "deliveries out of offset order";
}

namespace {
struct flush_log final : transport::flushable {
  int id;
  std::vector<int>* log;
  transport::thread_context* tc = nullptr;
  bool again = false;  // wants one more flush from inside its flush
  flush_log(int i, std::vector<int>* l) : id(i), log(l) {}
  void flush() override {
    log->push_back(id);
    if (again) {
      again = false;
      tc->want_flush(std::static_pointer_cast<transport::flushable>(self.lock()));
    }
  }
  std::weak_ptr<flush_log> self;
};
}  // namespace

TEST(ThreadContext, AFanOutsFlushesRunInBatchesWithTheLoopsOtherWorkBetweenThemEachOnceInOrder) {
  transport::thread_context tc(0);
  std::vector<int> log;
  constexpr int n = 3 * transport::thread_context::flush_batch + 5;
  std::vector<std::shared_ptr<flush_log>> fs;
  for (int i = 0; i < n; ++i) {
    fs.push_back(std::make_shared<flush_log>(i, &log));
    fs.back()->self = fs.back();
    fs.back()->tc = &tc;
  }
  fs[3]->again = true;  // asks again while being flushed: once more, after this pass
  boost::asio::post(tc.ioc(), [&] {
    for (auto& f : fs) {
      tc.want_flush(f);
      tc.want_flush(f);  // twice in a pass: flushed once
    }
    // Work that arrives while the pass is being flushed (a publisher's next request).
    boost::asio::post(tc.ioc(), [&] { log.push_back(-1); });
  });
  tc.ioc().run();
  ASSERT_EQ(log.size(), static_cast<std::size_t>(n + 2));
  const auto other = std::find(log.begin(), log.end(), -1) - log.begin();
  EXPECT_LE(other, static_cast<long>(transport::thread_context::flush_batch))
      << "the other work waited for more than one batch";
  std::vector<int> flushed;
  for (int v : log)
    if (v >= 0) flushed.push_back(v);
  std::vector<int> want;
  for (int i = 0; i < n; ++i) want.push_back(i);
  want.push_back(3);
  EXPECT_EQ(flushed, want);
}
