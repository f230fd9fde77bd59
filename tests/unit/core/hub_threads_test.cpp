// Fan-out across real threads. hub_test.cpp simulates the event loops in one thread to
// make interleavings explicit; here they are real threads, publishers publish from
// threads of their own through the memory broker, and subscribers come and go while
// messages flow, so the ThreadSanitizer build (scripts/sanitize.sh) checks the locking
// of the hub's registry, the broker's channel locks and the hand-off between threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "broker/memory/memory_broker.hpp"
#include "core/hub.hpp"

using namespace herald;
using namespace std::chrono_literals;

namespace {

// A minimal event loop: a FIFO of functions run by one thread, as a transport's
// io_context runs the hub's posts.
class loop_thread {
 public:
  explicit loop_thread(int index) : thread_([this, index] { run(index); }) {}
  ~loop_thread() { stop(); }

  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(m_);
      q_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  /// Runs `fn` on the loop and waits for it.
  void call(std::function<void()> fn) {
    std::promise<void> done;
    post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  /// Runs what is queued, then ends the thread.
  void stop() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run(int index) {
    core::hub::set_current_thread(index);
    std::unique_lock lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !q_.empty(); });
      if (q_.empty()) return;
      auto fn = std::move(q_.front());
      q_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest is built
};

// Records offsets per channel; touched only on its loop's thread, read after the loops
// stopped.
struct recorder final : core::subscriber {
  std::vector<std::uint64_t> got;
  std::atomic<std::size_t> count{0};
  void deliver(const protocol::message_ptr& m) override {
    got.push_back(m->offset());
    count.fetch_add(1, std::memory_order_release);
  }
  core::transport kind() const noexcept override { return core::transport::ws; }
  void resync_hint(const std::string&) override {}
};

struct threaded_node {
  std::vector<std::unique_ptr<loop_thread>> loops;
  std::unique_ptr<core::hub> hub;
  core::namespace_table namespaces;
  std::unique_ptr<broker::memory_broker> broker;

  explicit threaded_node(int threads) {
    std::vector<core::hub::poster> posters;
    for (int i = 0; i < threads; ++i) {
      loops.push_back(std::make_unique<loop_thread>(i));
      posters.push_back([l = loops.back().get()](std::function<void()> fn) { l->post(std::move(fn)); });
    }
    hub = std::make_unique<core::hub>(std::move(posters));
    core::namespace_options o;
    o.history_size = 10;
    namespaces = core::namespace_table(o);
    broker = std::make_unique<broker::memory_broker>(namespaces, broker::memory_broker_options{},
                                                     [h = hub.get()](std::string_view c) { return h->has_subscribers(c); });
    broker->set_listener(hub.get());
    hub->set_broker(broker.get());
  }
  ~threaded_node() { stop(); }
  void stop() {
    for (auto& l : loops) l->stop();
  }
  void publish(const std::string& channel) {
    broker->publish({channel, "", "1"}, [](const core::broker::publish_result& r) {
      ASSERT_TRUE(std::holds_alternative<protocol::message_ptr>(r));
    });
  }
};

bool wait_for(const std::function<bool()>& done) {
  for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

}  // namespace

TEST(HubThreads, EverySubscriberOnEveryThreadSeesEveryMessageOnceInOrder) {
  constexpr int threads = 3, per_publisher = 300;
  threaded_node node(threads);
  std::vector<std::unique_ptr<recorder>> subs;  // two per thread and channel
  const std::vector<std::string> channels = {"news", "sport"};
  for (int t = 0; t < threads; ++t)
    for (const auto& c : channels)
      for (int k = 0; k < 2; ++k) {
        subs.push_back(std::make_unique<recorder>());
        node.loops[t]->call([&, s = subs.back().get()] { node.hub->subscribe(t, c, s); });
      }

  // Two publishers per channel, on threads of their own.
  std::vector<std::thread> publishers;
  for (const auto& c : channels)
    for (int p = 0; p < 2; ++p)
      publishers.emplace_back([&node, c] {
        for (int i = 0; i < per_publisher; ++i) node.publish(c);
      });
  for (auto& p : publishers) p.join();

  const std::size_t expected = 2 * per_publisher;
  const bool all_delivered = wait_for([&] {
    for (auto& s : subs)
      if (s->count.load(std::memory_order_acquire) < expected) return false;
    return true;
  });
  node.stop();
  ASSERT_TRUE(all_delivered);
  for (auto& s : subs) {
    ASSERT_EQ(s->got.size(), expected);
    for (std::size_t i = 0; i < expected; ++i) ASSERT_EQ(s->got[i], i + 1) << "out of order or duplicated";
  }
}

TEST(HubThreads, SubscribersComeAndGoWhileMessagesFlow) {
  constexpr int threads = 2, messages = 400;
  threaded_node node(threads);
  recorder steady;
  node.loops[0]->call([&] { node.hub->subscribe(0, "churn", &steady); });

  std::atomic<bool> publishing{true};
  // Each loop toggles its own churners (subscribed or not) while the publisher runs, and
  // a reader thread takes the counts, as /metrics and /api/channels do.
  constexpr int churners_per_thread = 20;
  std::vector<std::unique_ptr<recorder>> churners;
  std::vector<char> subscribed(threads * churners_per_thread, 0);  // touched by the owning loop only
  for (int i = 0; i < threads * churners_per_thread; ++i) churners.push_back(std::make_unique<recorder>());
  std::vector<std::function<void(int)>> steps(threads);
  for (int t = 0; t < threads; ++t) {
    steps[t] = [&, t](int i) {
      const int k = t * churners_per_thread + i % churners_per_thread;
      const auto ut = static_cast<unsigned>(t);
      if (subscribed[k])
        node.hub->unsubscribe(ut, "churn", churners[k].get());
      else
        node.hub->subscribe(ut, "churn", churners[k].get());
      subscribed[k] = !subscribed[k];
      if (publishing.load()) node.loops[t]->post([&, t, i] { steps[t](i + 1); });
    };
    node.loops[t]->post([&, t] { steps[t](0); });
  }
  std::thread reader([&] {
    while (publishing.load()) {
      (void)node.hub->counts();
      (void)node.hub->has_subscribers("churn");
    }
  });
  std::thread publisher([&] {
    for (int i = 0; i < messages; ++i) node.publish("churn");
  });
  publisher.join();
  const bool all_delivered = wait_for([&] { return steady.count.load(std::memory_order_acquire) == messages; });
  publishing = false;
  reader.join();
  node.stop();
  ASSERT_TRUE(all_delivered);

  ASSERT_EQ(steady.got.size(), static_cast<std::size_t>(messages));
  for (std::size_t i = 0; i < steady.got.size(); ++i) ASSERT_EQ(steady.got[i], i + 1);
  for (auto& c : churners)
    for (std::size_t i = 1; i < c->got.size(); ++i)
      ASSERT_LT(c->got[i - 1], c->got[i]) << "a subscriber saw its channel out of order";
}
