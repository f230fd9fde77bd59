#pragma once
#include <chrono>
#include <cstddef>

namespace herald::broker {

struct memory_broker_options {
  std::size_t max_channels = 1'000'000;
  std::chrono::seconds idle_ttl{60};  // reclaim quiet, empty, unsubscribed channels after
};

}  // namespace herald::broker
