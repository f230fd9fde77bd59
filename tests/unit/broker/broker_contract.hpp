#pragma once
// The broker contract (core/broker.hpp), as one suite every broker must pass: each
// implementation instantiates it with a factory (see memory_broker_test.cpp).
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <mutex>

#include "core/broker.hpp"
#include "core/namespace_options.hpp"
#include <thread>

namespace herald::test {

struct broker_fixture {
  std::unique_ptr<core::broker> broker;
  std::function<void()> teardown;
};

/// A broker under test: its name (in test names) and how to make one.
struct broker_factory {
  std::string name;
  std::function<broker_fixture(const core::namespace_table&)> make;
};
inline void PrintTo(const broker_factory& f, std::ostream* os) { *os << f.name; }

struct collecting_listener final : core::publication_listener {
  std::mutex m;
  std::vector<protocol::message_ptr> got;
  void on_publication(const protocol::message_ptr& msg) override {
    std::lock_guard lock(m);
    got.push_back(msg);
  }
  void on_resync(const std::string&) override {}
};

class BrokerContract : public ::testing::TestWithParam<broker_factory> {
 protected:
  void SetUp() override {
    core::namespace_options small;
    small.history_size = 3;
    namespaces_.set("small", small);
    core::namespace_options whole;  // the race test keeps every message in history
    whole.history_size = 100000;
    namespaces_.set("race", whole);
    fixture_ = GetParam().make(namespaces_);
    if (!fixture_.broker) GTEST_SKIP() << "this broker's server is not available here (redis-server not installed?)";
    fixture_.broker->set_listener(&listener_);
  }
  void TearDown() override {
    if (fixture_.teardown) fixture_.teardown();
  }

  core::broker& broker() { return *fixture_.broker; }

  protocol::message_ptr publish(const std::string& channel, const std::string& data = "1",
                                const std::string& event = "") {
    std::promise<core::broker::publish_result> p;
    broker().publish({channel, event, data}, [&](core::broker::publish_result r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(std::holds_alternative<protocol::message_ptr>(r));
    return std::holds_alternative<protocol::message_ptr>(r) ? std::get<protocol::message_ptr>(r) : nullptr;
  }

  /// Watches `channel` (as a node with local subscribers would) and waits until the
  /// broker delivers it: a history read of a watched channel completes only then.
  void watch(const std::string& channel) {
    broker().watch(channel);
    history(channel, std::nullopt, 0);
  }

  /// The offsets the listener saw for `channel`, once `count` arrived (or 5 s passed).
  std::vector<std::uint64_t> seen(const std::string& channel, std::size_t count) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(listener_.m);
        std::vector<std::uint64_t> out;
        for (auto& m : listener_.got)
          if (m->channel() == channel) out.push_back(m->offset());
        if (out.size() >= count || i == 499) return out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return {};
  }

  core::broker::history_result history(const std::string& channel, std::optional<core::position> since,
                                       std::size_t limit = 100, std::size_t max_bytes = 0) {
    std::promise<core::broker::history_result> p;
    broker().history({channel, since, limit, max_bytes}, [&](core::broker::history_result r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  core::broker::publish_result try_publish(core::publish_request req) {
    std::promise<core::broker::publish_result> p;
    broker().publish(std::move(req), [&](core::broker::publish_result r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  /// A read from the oldest message history holds (since=earliest).
  core::broker::history_result history_earliest(const std::string& channel, std::size_t limit = 100) {
    std::promise<core::broker::history_result> p;
    core::history_query q{channel, std::nullopt, limit, 0, true};
    broker().history(std::move(q), [&](core::broker::history_result r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  core::namespace_table namespaces_;
  broker_fixture fixture_;
  collecting_listener listener_;
};

}  // namespace herald::test
