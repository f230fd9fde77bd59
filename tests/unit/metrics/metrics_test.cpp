#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>

namespace metrics = herald::metrics;

TEST(Metrics, AGaugeGroupIsComputedOncePerScrape) {
  static std::atomic<int> calls{0};
  metrics::register_callback_gauges(
      {{"test_group_a", "First of a group."}, {"test_group_b", "Second of a group."}, {"test_group_c", "Third."}},
      [] {
        ++calls;
        return std::vector<double>{1, 2.5, 3};
      });
  const int before = calls.load();
  const auto text = metrics::render_prometheus();
  EXPECT_EQ(calls.load() - before, 1);  // one computation (e.g. one broker walk) for three gauges
  EXPECT_NE(text.find("# TYPE test_group_a gauge\ntest_group_a 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ntest_group_b 2.5\n"), std::string::npos);
  EXPECT_NE(text.find("# HELP test_group_c Third.\n# TYPE test_group_c gauge\ntest_group_c 3\n"), std::string::npos);
}

TEST(Metrics, ASingleCallbackGaugeStillRenders) {
  metrics::register_callback_gauge("test_single", "One value.", [] { return 7.0; });
  EXPECT_NE(metrics::render_prometheus().find("\ntest_single 7\n"), std::string::npos);
}
