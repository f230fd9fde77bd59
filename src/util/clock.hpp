#pragma once
// Wall-clock and monotonic time in the units herald speaks.
#include <chrono>
#include <cstdint>

namespace herald::util {

/// Unix time in milliseconds (message `time` field).
inline std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// Monotonic milliseconds, for ages and timeouts (never goes back).
inline std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace herald::util
