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

using broker_factory = std::function<broker_fixture(const core::namespace_table&)>;

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
    fixture_ = GetParam()(namespaces_);
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

  core::broker::history_result history(const std::string& channel, std::optional<core::position> since,
                                       std::size_t limit = 100) {
    std::promise<core::broker::history_result> p;
    broker().history({channel, since, limit}, [&](core::broker::history_result r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  core::namespace_table namespaces_;
  broker_fixture fixture_;
  collecting_listener listener_;
};

}  // namespace herald::test
